// Package sched paces an open-loop load: a fixed total rate whatever the server answers,
// so a slow server shows up as latency and backlog rather than as a lower offered rate.
package sched

import (
	"fmt"
	"time"
)

// Pacer says how many sends are due at each moment of a phase of a given rate and
// duration. It keeps no clock of its own: the caller passes the time elapsed since the
// phase began, so a late tick catches up at once instead of drifting.
type Pacer struct {
	rate float64
	dur  time.Duration
	sent int64
}

// NewPacer returns a pacer for rate sends per second over dur.
func NewPacer(rate float64, dur time.Duration) (*Pacer, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("rate %v: want > 0", rate)
	}
	if dur <= 0 {
		return nil, fmt.Errorf("phase duration %v: want > 0", dur)
	}
	return &Pacer{rate: rate, dur: dur}, nil
}

// Total is the number of sends the whole phase holds.
func (p *Pacer) Total() int64 { return Due(p.rate, p.dur) }

// Step returns how many sends are due now that elapsed has passed, and counts them as
// sent. Past the end of the phase it gives what remains of Total and then 0.
func (p *Pacer) Step(elapsed time.Duration) int64 {
	if elapsed > p.dur {
		elapsed = p.dur
	}
	n := Due(p.rate, elapsed) - p.sent
	if n < 0 {
		n = 0
	}
	p.sent += n
	return n
}

// Done reports whether every send of the phase has been handed out.
func (p *Pacer) Done() bool { return p.sent >= p.Total() }

// Due is how many sends a rate per second owes after elapsed: floor(rate × elapsed).
func Due(rate float64, elapsed time.Duration) int64 {
	if elapsed <= 0 {
		return 0
	}
	return int64(rate * elapsed.Seconds())
}
