package soak

import (
	"slices"
	"time"
)

// Bounds are what "flat" allows between a figure's floor just after the warm-up (the
// base: the lowest of the first Window samples taken at or after it) and its floor at the
// end (the lowest of the last Window samples). Floors, because what passes is transient:
// a backlog on an overloaded machine raises goroutines (requests in flight) for a sample
// or two, garbage raises RSS until the next GC; what leaks raises every sample. A leak
// slower than the bounds allow over the run shows only in Check.PerHour.
type Bounds struct {
	// RSSGrowth and RSSSlack: the end RSS may be at most base × (1 + RSSGrowth) + RSSSlack.
	RSSGrowth float64
	RSSSlack  int64
	// CountGrowth and CountSlack: the end goroutines and open files may be at most
	// base × (1 + CountGrowth) + CountSlack.
	CountGrowth float64
	CountSlack  int
	// Window is how many samples the base and the end are the lowest of (fewer when the
	// series is short: half of the samples after the warm-up, at least one).
	Window int
}

// DefaultBounds: RSS within +20 % + 4 MiB, goroutines and open files within +10 % + 10,
// floors of 5 samples (2.5 minutes at the soak's default interval).
var DefaultBounds = Bounds{RSSGrowth: 0.20, RSSSlack: 4 << 20, CountGrowth: 0.10, CountSlack: 10, Window: 5}

// Figure names a watched figure.
type Figure string

// The figures of a Sample.
const (
	FigRSS        Figure = "RSS"
	FigGoroutines Figure = "goroutines"
	FigOpenFiles  Figure = "open files"
	FigThreads    Figure = "threads"
)

// Figures lists them in report order; FigThreads is shown but not judged.
var Figures = []Figure{FigRSS, FigGoroutines, FigOpenFiles, FigThreads}

func (f Figure) of(s Sample) float64 {
	switch f {
	case FigRSS:
		return float64(s.RSS)
	case FigGoroutines:
		return float64(s.Goroutines)
	case FigOpenFiles:
		return float64(s.FDs)
	case FigThreads:
		return float64(s.Threads)
	}
	return -1
}

// Judged reports whether the verdict looks at the figure.
func (f Figure) Judged() bool { return f != FigThreads }

// Check is the verdict on one figure of one process.
type Check struct {
	Figure Figure
	// Known is false when the figure could not be read at the base or the end (no
	// /metrics, the process gone) or no sample was taken after the warm-up.
	Known bool
	// Base and End (the floors), Max (over the samples after the warm-up) and Limit (what
	// End may reach).
	Base, End, Max, Limit float64
	// PerHour is the least-squares slope over the samples after the warm-up, per hour.
	PerHour float64
	// Flat is End ≤ Limit (and Known).
	Flat bool
}

// Judge checks every figure of one process's series: samples[i] was taken at at[i] since
// the load began; those before warmup are left out.
func Judge(at []time.Duration, samples []Sample, warmup time.Duration, b Bounds) []Check {
	var checks []Check
	for _, f := range Figures {
		var ts, vs []float64
		missing := false
		for i, s := range samples {
			if at[i] < warmup {
				continue
			}
			v := f.of(s)
			if v < 0 {
				missing = true
				continue
			}
			ts = append(ts, at[i].Hours())
			vs = append(vs, v)
		}
		c := Check{Figure: f}
		checks = append(checks, c)
		if len(vs) == 0 {
			continue
		}
		w := min(max(b.Window, 1), max(len(vs)/2, 1))
		c.Base, c.End, c.Max = slices.Min(vs[:w]), slices.Min(vs[len(vs)-w:]), slices.Max(vs)
		c.PerHour = slope(ts, vs)
		if f == FigRSS {
			c.Limit = c.Base*(1+b.RSSGrowth) + float64(b.RSSSlack)
		} else {
			c.Limit = c.Base*(1+b.CountGrowth) + float64(b.CountSlack)
		}
		// A figure that became unreadable (the process died) is not known at the end.
		c.Known = !missing || f.of(samples[len(samples)-1]) >= 0
		c.Flat = c.Known && c.End <= c.Limit
		checks[len(checks)-1] = c
	}
	return checks
}

// Flat reports whether every judged figure of checks is known and flat.
func Flat(checks []Check) bool {
	for _, c := range checks {
		if c.Figure.Judged() && !c.Flat {
			return false
		}
	}
	return true
}

// slope is the least-squares slope of y over x; 0 with fewer than two distinct x.
func slope(x, y []float64) float64 {
	n := float64(len(x))
	if n < 2 {
		return 0
	}
	var sx, sy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
	}
	mx, my := sx/n, sy/n
	var num, den float64
	for i := range x {
		num += (x[i] - mx) * (y[i] - my)
		den += (x[i] - mx) * (x[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}
