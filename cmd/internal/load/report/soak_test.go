package report

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charla/charla/cmd/internal/load/bench"
	"github.com/charla/charla/cmd/internal/load/soak"
)

// soakResult is a 30-minute soak sampled every 30 s: an edge whose goroutines leak 30 a
// minute, a flat chatsvc and MariaDB (not judged, no /metrics); lost messages were
// acknowledged and never delivered.
func soakResult(lost int64) *bench.SoakResult {
	cfg := bench.SoakConfig{
		Pairs: 1000, Rate: 1000, Duration: 30 * time.Minute, Churn: 2, Offline: 2 * time.Second,
		Interval: 30 * time.Second, FlatAfter: 3 * time.Minute, Bounds: soak.DefaultBounds,
		Procs: []soak.Proc{{Name: "edge1", PID: 11, Role: soak.Server}, {Name: "chatsvc", PID: 12, Role: soak.Server}, {Name: "mariadbd", PID: 13, Role: soak.Database}},
	}
	r := &bench.SoakResult{Config: cfg, Warmup: 1000, Phase: bench.ChatPhase{Offered: 1800000, Sent: 1800000, Delivered: 1800000 - lost, Lost: lost, Acks: 1800000, P50: 3 * time.Millisecond, P99: 40 * time.Millisecond}, Replayed: 7000, ResumeOK: 3580, Reconnects: 3580,
		Mends: 4, ServerCloses: map[string]int64{"sender 1008 slow consumer": 1, "recipient 1011 events unavailable: reconnect and resume": 3},
		Outcome: bench.Outcome{Delivered: 1800000 - lost, AckedLost: lost}}
	for at := time.Duration(0); at <= cfg.Duration; at += cfg.Interval {
		m := int(at.Minutes())
		r.Rows = append(r.Rows, bench.SoakRow{
			At:      at + 3*time.Millisecond,
			Traffic: bench.SoakTraffic{Sent: int64(at.Seconds()) * 1000, Delivered: int64(at.Seconds())*1000 - 12, Window: 30000, P50: 3 * time.Millisecond, P99: 41 * time.Millisecond},
			Samples: []soak.Sample{
				{RSS: 80 << 20, Goroutines: 2100 + 30*m, FDs: 1030, Threads: 9},
				{RSS: 40 << 20, Goroutines: 60, FDs: 25, Threads: 8},
				{RSS: int64(300+m) << 20, Goroutines: -1, FDs: 60, Threads: 40},
			},
		})
	}
	r.Checks = bench.Judge(r.Rows, cfg)
	r.Config.Rest = 30 * time.Second
	r.Rest = &bench.SoakRow{At: 31 * time.Minute, Samples: []soak.Sample{
		{RSS: 90 << 20, Goroutines: 3000, FDs: 1030, Threads: 9},
		{RSS: 40 << 20, Goroutines: 61, FDs: 25, Threads: 8},
		{RSS: 340 << 20, Goroutines: -1, FDs: 60, Threads: 40},
	}}
	return r
}

func TestWriteSoak(t *testing.T) {
	t.Parallel()
	r := soakResult(0)
	var b bytes.Buffer
	WriteSoak(&b, SoakScenario{Title: "Apart", Command: "go run ./cmd/charla-load -soak 30m", Result: r})
	out := b.String()
	for _, want := range []string{
		"## Apart",
		"Verdict: **failed**.",
		"the lowest of a figure's last 5 samples is at most the lowest of its first 5 samples after the 3m0s warm-up plus 20 % (RSS, plus 4 MiB) or plus 10 % + 10 (goroutines, open files)",
		"every 0.5 s a recipient",
		"| written | delivered in time | late | **acked lost** | refused | unanswered |",
		"| 1800000 | 1800000 | 0 | 0 | 0 | 0 |",
		"| resumed (`ok`) / `failed` | 3580 / 0 |",
		"| of which, by side and close code | 3× recipient 1011 events unavailable: reconnect and resume; 1× sender 1008 slow consumer |",
		// The edge: goroutines from 2190 (the lowest of minutes 3 to 5) to 2940 (28 to 30).
		"| edge1 (pid 11) | server | 80.0 → 80.0 (80.0) | +0.0 | 2190 → 2940 (3000) | 1030 → 1030 (1030) | 9 → 9 | 2100 → 3000, 1030 → 1030 | **no**: goroutines grows |",
		"| chatsvc (pid 12) | server | 40.0 → 40.0 (40.0) | +0.0 | 60 → 60 (60) | 25 → 25 (25) | 8 → 8 | 60 → 61, 25 → 25 | yes |",
		"| mariadbd (pid 13) | database | 303.0 → 328.0 (330.0) | +60.0 | — | 60 → 60 (60) | 40 → 40 | — → —, 60 → 60 | (not judged) |",
		"the one 30s after the drain",
		"One row every 3m0s of load",
		"| 0:00 | 0 | -12 |",
		"| 3:00 | 180000 | 179988 | 0 | 12 | 0 | 0 | 3.00 | 41.00 |",
		"| t | edge1 | chatsvc | mariadbd |",
		"| 30:00 | 3000 | 60 | — |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("soak report lacks %q:\n%s", want, out)
		}
	}
	// Eleven rows over time per table: 0, 3, ..., 30 minutes.
	if n := strings.Count(out, "\n| 27:00 |"); n != 4 {
		t.Errorf("%d rows at 27:00, want one per table (4)", n)
	}
	if SoakPassed(r) {
		t.Error("a soak with a goroutine leak passed")
	}
}

func TestSoakPassed(t *testing.T) {
	t.Parallel()
	flat := func(lost int64) *bench.SoakResult {
		r := soakResult(lost)
		for i := range r.Rows {
			r.Rows[i].Samples[0].Goroutines = 2100
		}
		r.Checks = bench.Judge(r.Rows, r.Config)
		return r
	}
	if !SoakPassed(flat(0)) {
		t.Error("a flat soak without loss did not pass")
	}
	if SoakPassed(flat(1)) {
		t.Error("a soak that lost an acknowledged message passed")
	}
	// Late, refused and unanswered messages are reported, not judged.
	unacked := flat(0)
	unacked.Phase.Lost, unacked.Phase.Late = 9, 2
	unacked.Outcome = bench.Outcome{Delivered: 1800000 - 9, Late: 2, Refused: 4, Unanswered: 3}
	if !SoakPassed(unacked) {
		t.Errorf("a flat soak with late, refused and unanswered messages but no acked one lost did not pass: %+v", unacked.Outcome)
	}
	dup := flat(0)
	dup.Phase.Dups = 1
	gap := flat(0)
	gap.SeqGaps = 2
	for _, r := range []*bench.SoakResult{dup, gap, nil} {
		if SoakPassed(r) {
			t.Errorf("soak %+v passed", r)
		}
	}
}

// TestWriteSoakOutcome: the messages of a mixed fate are each in their column, the
// verdict judges the acknowledged ones lost only.
func TestWriteSoakOutcome(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		ackedLost int64
		verdict   string
	}{{"no acked lost", 0, "Verdict: **passed**."}, {"acked lost", 2, "Verdict: **failed**."}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := soakResult(0)
			for i := range r.Rows {
				r.Rows[i].Samples[0].Goroutines = 2100 // flat
			}
			r.Checks = bench.Judge(r.Rows, r.Config)
			// 1,800,000 written: 1,799,980 − acked lost delivered in time, 5 late, 7
			// refused, 8 unanswered.
			r.Config.Grace = 10 * time.Minute
			r.Outcome = bench.Outcome{Delivered: 1799980 - tc.ackedLost, Late: 5, AckedLost: tc.ackedLost, Refused: 7, Unanswered: 8}
			r.Phase.AckErrors = map[int]int64{503: 7}
			var b bytes.Buffer
			WriteSoak(&b, SoakScenario{Title: "Apart", Result: r})
			out := b.String()
			for _, want := range []string{
				tc.verdict,
				"Late: read after the 10m0s grace.",
				"| written | delivered in time | late | **acked lost** | refused | unanswered |",
				fmt.Sprintf("| 1800000 | %d | 5 | %d | 7 | 8 |", 1799980-tc.ackedLost, tc.ackedLost),
				"| ack errors | 7×503 |",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("soak report lacks %q:\n%s", want, out)
				}
			}
			for _, gone := range []string{"not delivered within the grace", "counted lost"} {
				if strings.Contains(out, gone) {
					t.Errorf("soak report still has %q:\n%s", gone, out)
				}
			}
		})
	}
}

// TestWriteSoakStoppedEarly shows the counts of the last sample, not a table of zeros, when
// the load did not reach its end.
func TestWriteSoakStoppedEarly(t *testing.T) {
	t.Parallel()
	r := soakResult(0)
	r.Phase = bench.ChatPhase{}
	r.Rows = r.Rows[:14] // up to 6:30
	r.Checks = bench.Judge(r.Rows, r.Config)
	var b bytes.Buffer
	WriteSoak(&b, SoakScenario{Title: "Apart", Result: r, Err: context.Canceled})
	out := b.String()
	for _, want := range []string{
		"**Stopped early:** context canceled",
		"Verdict: **failed**.",
		"The load stopped before its end; at its last sample (6:30): sent 390000, delivered 389988 (0 replayed), duplicates 0, 0 reconnections.",
		"| chatsvc (pid 12) | server | 40.0 → 40.0 (40.0) |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "### Messages") {
		t.Errorf("a stopped soak has a messages table:\n%s", out)
	}
}

// TestHeadersSayWhereTheRunWas: both reports start with the same run table, the soak's
// with the load average at its end too.
func TestHeadersSayWhereTheRunWas(t *testing.T) {
	at := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	var bench, soak strings.Builder
	Header(&bench, at, "abc1234", "AMD EPYC", 2, "1.00 2.00 3.00", "charla-load -targets sqlite", "go1.26.8")
	SoakHeader(&soak, at, "abc1234", "AMD EPYC", 2, "1.00 2.00 3.00", "4.00 5.00 6.00", "charla-load -soak 30m", "go1.26.8")
	for _, want := range []string{"| date | 2026-12-05 18:00 UTC |", "| commit | `abc1234` |", "| machine | 2 cores, AMD EPYC |",
		"| load average at start | 1.00 2.00 3.00 |", "| Go | go1.26.8 |"} {
		if !strings.Contains(bench.String(), want) || !strings.Contains(soak.String(), want) {
			t.Errorf("a header lacks %q:\n%s\n%s", want, bench.String(), soak.String())
		}
	}
	if !strings.Contains(soak.String(), "| load average at end | 4.00 5.00 6.00 |") || strings.Contains(bench.String(), "at end") {
		t.Errorf("only the soak's header has the load average at its end:\n%s\n%s", bench.String(), soak.String())
	}
	if !strings.Contains(bench.String(), "| command | `charla-load -targets sqlite` |") || !strings.Contains(soak.String(), "| command | `charla-load -soak 30m` |") {
		t.Errorf("each header names its command:\n%s\n%s", bench.String(), soak.String())
	}
}
