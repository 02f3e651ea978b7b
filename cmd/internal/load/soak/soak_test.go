package soak

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// testdata/metrics-charla.txt is GET /metrics of cmd/charla (one process, SQLite, idle),
// captured on the development machine.
func TestParseGaugeOfRealMetrics(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		want float64
	}{
		{"go_goroutines", 46},
		{"process_open_fds", 23},
		{"charla_build_info", 1}, // with labels
	} {
		f, err := os.Open("testdata/metrics-charla.txt")
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseGauge(f, tc.name)
		f.Close()
		if err != nil || got != tc.want {
			t.Errorf("ParseGauge(%s) = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestParseGaugeEdgeCases(t *testing.T) {
	t.Parallel()
	text := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\n" +
		"go_goroutines_peak 900\n" + // another metric with the name as prefix
		`weird{path="/a}b",q="\"}"} 7 1700000000000` + "\n" +
		"go_goroutines 1.234e3\n"
	for name, want := range map[string]float64{"go_goroutines": 1234, "weird": 7, "go_goroutines_peak": 900} {
		if got, err := ParseGauge(strings.NewReader(text), name); err != nil || got != want {
			t.Errorf("ParseGauge(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	for _, bad := range []string{"", "go_goroutines\n", "go_goroutines many\n", `go_goroutines{a="}` + "\n", "# go_goroutines 3\n"} {
		if v, err := ParseGauge(strings.NewReader(bad), "go_goroutines"); err == nil {
			t.Errorf("ParseGauge(%q) = %v, want an error", bad, v)
		}
	}
}

func TestReadProcesses(t *testing.T) {
	t.Parallel()
	metrics, err := os.ReadFile("testdata/metrics-charla.txt")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Write(metrics)
	}))
	defer srv.Close()
	ctx := context.Background()
	// This process, described as a server whose /metrics is the fixture.
	s := Read(ctx, srv.Client(), Proc{Name: "x", PID: os.Getpid(), Role: Server, MetricsURL: srv.URL + "/metrics"})
	if s.RSS <= 0 || s.Threads < 1 || s.FDs < 3 || s.Goroutines < 1 || s.Err != "" {
		t.Errorf("own sample %+v, want every figure known", s)
	}
	n, err := Goroutines(ctx, srv.Client(), srv.URL+"/metrics")
	if err != nil || n != 46 {
		t.Errorf("Goroutines = %d, %v; want 46", n, err)
	}
	if _, err := Goroutines(ctx, srv.Client(), srv.URL+"/nothing"); err == nil {
		t.Error("Goroutines of a 404: no error")
	}
	// A pid that does not exist: every figure unknown, the reasons kept.
	gone := ReadAll(ctx, srv.Client(), []Proc{{Name: "gone", PID: math.MaxInt32, MetricsURL: "http://127.0.0.1:1/metrics"}})
	if g := gone[0]; g.RSS != -1 || g.FDs != -1 || g.Threads != -1 || g.Goroutines != -1 || g.Err == "" {
		t.Errorf("sample of a missing process %+v, want -1 everywhere and a reason", g)
	}
}

// series builds samples every 30 s for d from fn(t) giving RSS MiB, goroutines and fds.
func series(d time.Duration, fn func(t time.Duration) (rssMiB float64, gor, fds int)) ([]time.Duration, []Sample) {
	var at []time.Duration
	var ss []Sample
	for t := time.Duration(0); t <= d; t += 30 * time.Second {
		rss, g, f := fn(t)
		at = append(at, t)
		ss = append(ss, Sample{RSS: int64(rss * (1 << 20)), Goroutines: g, FDs: f, Threads: 12})
	}
	return at, ss
}

func checkOf(t *testing.T, cs []Check, f Figure) Check {
	t.Helper()
	for _, c := range cs {
		if c.Figure == f {
			return c
		}
	}
	t.Fatalf("no check of %s in %+v", f, cs)
	return Check{}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	const warm = 3 * time.Minute
	// An edge at 1,000 connections: RSS climbs during the warm-up, then wobbles with GC
	// (one outlier sample of +40 % at the end does not move the floor); goroutines and
	// fds follow reconnections ±2 %, with a backlog tripling the goroutines in the last
	// two samples.
	wobble := func(t time.Duration) float64 { return math.Sin(float64(t / (30 * time.Second))) }
	at, flat := series(30*time.Minute, func(t time.Duration) (float64, int, int) {
		if t < warm {
			return 20 + 40*t.Minutes()/3, 1500, 900
		}
		rss, g := 62+3*wobble(t), 3010+int(40*wobble(t))
		if t == 29*time.Minute+30*time.Second {
			rss = 90
		}
		if t >= 29*time.Minute+30*time.Second {
			g *= 3
		}
		return rss, g, 1012 + int(15*wobble(t))
	})
	cs := Judge(at, flat, warm, DefaultBounds)
	if !Flat(cs) {
		t.Errorf("a flat series judged not flat: %+v", cs)
	}
	if rss := checkOf(t, cs, FigRSS); rss.Max != 90<<20 || math.Abs(rss.PerHour) > 20<<20 || rss.Base < 59<<20 || rss.Base > 65<<20 {
		t.Errorf("RSS check %+v: want max 90 MiB, base about 62 MiB, a small slope", rss)
	}
	if th := checkOf(t, cs, FigThreads); !th.Known || th.End != 12 {
		t.Errorf("threads %+v, want known, 12", th)
	}

	// A leak of 20 goroutines and 20 fds per minute (a reconnection every 3 s leaves its
	// goroutine and socket behind), RSS flat: goroutines and fds fail, RSS passes.
	at, leak := series(30*time.Minute, func(t time.Duration) (float64, int, int) {
		return 60, 3000 + int(20*t.Minutes()), 1000 + int(20*t.Minutes())
	})
	cs = Judge(at, leak, warm, DefaultBounds)
	if Flat(cs) || !checkOf(t, cs, FigRSS).Flat || checkOf(t, cs, FigGoroutines).Flat || checkOf(t, cs, FigOpenFiles).Flat {
		t.Errorf("goroutine and fd leak: %+v, want RSS flat, goroutines and fds not", cs)
	}
	if g := checkOf(t, cs, FigGoroutines); math.Abs(g.PerHour-1200) > 1 || g.Limit != g.Base*1.1+10 {
		t.Errorf("goroutine check %+v: want a slope of 1200/h and limit base×1.1+10", g)
	}

	// RSS growing 40 % over the run fails; the same growth during the warm-up only passes.
	at, grow := series(30*time.Minute, func(t time.Duration) (float64, int, int) { return 100 + 1.5*t.Minutes(), 50, 20 })
	if c := checkOf(t, Judge(at, grow, warm, DefaultBounds), FigRSS); c.Flat || !c.Known || c.Base != 104.5*(1<<20) || c.End != 142*(1<<20) {
		t.Errorf("RSS 104.5 → 145 MiB judged %+v, want not flat, floors 104.5 and 142 MiB", c)
	}
	if c := checkOf(t, Judge(at, grow, 29*time.Minute, DefaultBounds), FigRSS); !c.Flat {
		t.Errorf("RSS growth before a 29 min warm-up judged %+v, want flat", c)
	}

	// A process that died: its last samples unreadable.
	at, died := series(10*time.Minute, func(time.Duration) (float64, int, int) { return 30, 40, 12 })
	for i := len(died) - 3; i < len(died); i++ {
		died[i] = Sample{RSS: -1, Goroutines: -1, FDs: -1, Threads: -1, Err: "no such process"}
	}
	if cs := Judge(at, died, warm, DefaultBounds); Flat(cs) || checkOf(t, cs, FigRSS).Known {
		t.Errorf("a dead process judged %+v, want not flat, RSS unknown", cs)
	}
	// No /metrics (MariaDB): goroutines unknown, the rest judged.
	at, nodb := series(10*time.Minute, func(time.Duration) (float64, int, int) { return 300, -1, 40 })
	cs = Judge(at, nodb, warm, DefaultBounds)
	if checkOf(t, cs, FigGoroutines).Known || !checkOf(t, cs, FigRSS).Flat || Flat(cs) {
		t.Errorf("no goroutines: %+v, want goroutines unknown (not flat), RSS flat", cs)
	}
	// Nothing after the warm-up.
	if cs := Judge(at[:2], nodb[:2], warm, DefaultBounds); checkOf(t, cs, FigRSS).Known {
		t.Errorf("no sample after the warm-up judged %+v, want unknown", cs)
	}
}
