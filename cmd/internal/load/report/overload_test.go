package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/charla/charla/cmd/internal/load/bench"
)

const mb = 1 << 20

// overloadResult is a run that meets the target: nothing acked lost, RSS up 100 MiB,
// p99 good again from the second recovery window.
func overloadResult() *bench.OverloadResult {
	phase := func(name string, rate int, p99 time.Duration) bench.OverloadPhase {
		return bench.OverloadPhase{
			Name: name, Rate: rate, Duration: time.Second, Offered: int64(rate), Sent: int64(rate), Achieved: float64(rate),
			Delivered: int64(rate), Acks: int64(rate), AckErrors: map[int]int64{}, P50: p99 / 2, P99: p99, Max: 2 * p99,
			ReplyP50: time.Millisecond, ReplyP99: 2 * time.Millisecond, RSSPeak: 200 * mb,
		}
	}
	ov := phase("overload", 4000, 900*time.Millisecond)
	ov.Acks, ov.AckErrors, ov.Delivered, ov.LostUnacked, ov.Unsent, ov.Sent = 3500, map[int]int64{503: 400}, 3900, 100, 10, 3990
	ov.NoReply, ov.LagP99 = 90, 250*time.Millisecond
	return &bench.OverloadResult{
		Config: bench.OverloadConfig{Pairs: 3, BaseRate: 2000, Baseline: 10 * time.Second, Rate: 4000, Overload: 30 * time.Second, Recovery: 20 * time.Second, Drain: time.Minute, Window: time.Second},
		Phases: []bench.OverloadPhase{phase("baseline", 2000, 30*time.Millisecond), ov, phase("recovery", 2000, 40*time.Millisecond)},
		Windows: []bench.OverloadWindow{
			{Start: -2 * time.Second, Sent: 4000, Delivered: 4000, P99: 500 * time.Millisecond},
			{Start: -time.Second, Sent: 4000, Delivered: 3900, P99: 900 * time.Millisecond},
			{Start: 0, Sent: 2000, Delivered: 2000, P99: 300 * time.Millisecond},
			{Start: time.Second, Sent: 2000, Delivered: 2000, P50: 5 * time.Millisecond, P99: 25 * time.Millisecond, Max: 31 * time.Millisecond, OK: true},
		},
		Threshold: 30 * time.Millisecond, Recovered: true, RecoveredIn: time.Second,
		Span: 10 * time.Second,
		Spans: []bench.OverloadWindow{
			{Start: 0, Sent: 20000, Delivered: 20000, P99: 45 * time.Millisecond},
			{Start: time.Second, Sent: 20000, Delivered: 20000, P99: 28 * time.Millisecond, OK: true},
		},
		SpanRecovered: true, SpanRecoveredIn: time.Second,
		BaselineWindows: []bench.OverloadWindow{
			{Start: 0, Sent: 2000, Delivered: 2000, P99: 29 * time.Millisecond, OK: true},
			{Start: time.Second, Sent: 2000, Delivered: 2000, P99: 33 * time.Millisecond},
		},
		RSS:       []bench.RSSSample{{At: 0, RSS: 150 * mb}, {At: time.Second, RSS: 250 * mb}, {At: 2 * time.Second, RSS: 200 * mb}},
		RSSBefore: 150 * mb, RSSPeak: 250 * mb, RSSPeakAt: 29 * time.Second, RSSRecoveryEnd: 200 * mb, RSSAfter: 190 * mb,
	}
}

func TestWriteOverloadMet(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	Write(&b, Scenario{Key: "sqlite", Title: "t", OverloadFrom: "2 × the max sustainable rate above", Charla: Figures{Overload: overloadResult()}})
	out := b.String()
	for _, want := range []string{
		"| overload: acked messages lost | 0 | 0 |  |  | yes |",
		"| overload: server RSS peak − RSS before (MiB) | ≤ 256 | 100 |  |  | yes |",
		"| overload: time until p99 is back at the baseline's (s) | ≤ 5 | 1.0 |  |  | yes |",
		"### Overload",
		"**4000 msg/s for 30s** (2 × the max sustainable rate above)",
		"Verdict: **met**. No acked message lost: yes (0 of 7500 acked).",
		"(before 150 MiB, peak 250 MiB at 29 s after the overload began, at the end of the recovery 200 MiB, after the drain 190 MiB)",
		"p99 back within 5 s: yes (in 1.0 s; judged as the threshold was measured: from then on every 10s of write time, as long as the baseline, has all its messages delivered and p99 ≤ 30.00 ms, the baseline's p99).",
		"Per 1s window instead (every window from then on all delivered and p99 ≤ 30.00 ms): in 1.0 s; the baseline's own 1s windows judged so: 1 of 2 good.",
		"| baseline | 2000 | 2000 | 2000 | 0 | 0.00 | 15.00 | 30.00 | 60.00 | 1.00 | 2.00 | 2000 | none | 0 | 0 | 0 | 0 | 200 |",
		"| overload | 4000 | 4000 | 3990 | 10 | 250.00 | 450.00 | 900.00 | 1800.00 | 1.00 | 2.00 | 3500 | 400×503 | 90 | 0 | 100 | 0 | 200 |",
		"p99 ms per 1s of write time during the overload: 500.00, 900.00 (100 not delivered).",
		"Server RSS MiB from the overload's start to the end of the drain, every 1s: 150, 250, 200.",
		"| recovery window (s after the overload) | sent | delivered | p50 ms | p99 ms | max ms | good | p99 ms of the 10s from here | span good |",
		"| 0 | 2000 | 2000 | 0.00 | 300.00 | 0.00 | no | 45.00 | no |",
		"| 1 | 2000 | 2000 | 5.00 | 25.00 | 31.00 | yes | 28.00 | yes |",
		"p99 ms per 1s of write time during the baseline (its p99 30.00 ms): 29.00, 33.00.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestWriteOverloadNotMet breaks each clause in turn: the verdict names the broken one,
// and its Targets row says no.
func TestWriteOverloadNotMet(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		mod   func(r *bench.OverloadResult)
		wants []string
	}{
		{"acked lost", func(r *bench.OverloadResult) { r.Phases[2].LostAcked = 3 }, []string{
			"No acked message lost: **no** (3 of 7500 acked)", "| overload: acked messages lost | 0 | 3 |  |  | **no** |",
		}},
		{"RSS grew", func(r *bench.OverloadResult) { r.RSSPeak = r.RSSBefore + 257*mb }, []string{
			"+ 256 MiB): **no** (before 150 MiB, peak 407 MiB", "| overload: server RSS peak − RSS before (MiB) | ≤ 256 | 257 |  |  | **no** |",
		}},
		{"slow recovery", func(r *bench.OverloadResult) {
			r.SpanRecoveredIn = 6 * time.Second
			r.RecoveredIn, r.FirstOK, r.FirstOKFound = 8*time.Second, time.Second, true
		}, []string{
			"p99 back within 5 s: **no** (in 6.0 s; judged as", "| overload: time until p99 is back at the baseline's (s) | ≤ 5 | 6.0 |  |  | **no** |",
			"p99 ≤ 30.00 ms): in 8.0 s, though a window was first good 1.0 s after the overload;",
		}},
		{"never recovered", func(r *bench.OverloadResult) { r.SpanRecovered = false }, []string{
			"p99 back within 5 s: **no** (not within the recovery; judged as", "| overload: time until p99 is back at the baseline's (s) | ≤ 5 | not recovered |  |  | **no** |",
		}},
	} {
		r := overloadResult()
		tc.mod(r)
		if OverloadMet(r) {
			t.Errorf("%s: OverloadMet = true", tc.name)
		}
		var b bytes.Buffer
		Write(&b, Scenario{Key: "mysql", Title: "t", Charla: Figures{Overload: r}})
		out := b.String()
		for _, want := range append(tc.wants, "Verdict: **not met**.") {
			if !strings.Contains(out, want) {
				t.Errorf("%s: report lacks %q:\n%s", tc.name, want, out)
			}
		}
	}
}

func TestOverloadGoalsWhenNotRunOrOnlyReported(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	Write(&b, Scenario{Key: "sqlite", Title: "t", Charla: Figures{Chat: &bench.ChatResult{Phases: []bench.ChatPhase{phase(2000, 2000, time.Millisecond, 0)}}}})
	if out := b.String(); !strings.Contains(out, "| overload: acked messages lost | 0 | not run |") || strings.Contains(out, "### Overload") {
		t.Errorf("without the overload: want its goals not run and no section:\n%s", out)
	}
	b.Reset()
	Write(&b, Scenario{Key: "apart", Title: "t", Charla: Figures{Overload: overloadResult()}})
	if out := b.String(); !strings.Contains(out, "| overload: acked messages lost | (reported) | 0 |  |  |  |") {
		t.Errorf("apart: want the overload reported, not judged:\n%s", out)
	}
}
