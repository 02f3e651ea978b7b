package report

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/charla/charla/cmd/internal/load/bench"
)

func phase(rate int, achieved float64, p99 time.Duration, lost int64) bench.ChatPhase {
	return bench.ChatPhase{Rate: rate, Sent: int64(rate) * 10, Delivered: int64(rate)*10 - lost, Achieved: achieved, P99: p99, Max: p99, Lost: lost}
}

func TestSustainable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		phases []bench.ChatPhase
		want   int
	}{
		{"none", nil, 0},
		{"highest that meets all", []bench.ChatPhase{phase(500, 500, time.Millisecond, 0), phase(2000, 2000, 40*time.Millisecond, 0), phase(5000, 5000, 60*time.Millisecond, 0)}, 2000},
		{"loss disqualifies", []bench.ChatPhase{phase(500, 500, time.Millisecond, 0), phase(2000, 2000, time.Millisecond, 1)}, 500},
		{"under 98 % achieved disqualifies", []bench.ChatPhase{phase(500, 500, time.Millisecond, 0), phase(2000, 1950, time.Millisecond, 0)}, 500},
		{"exactly the limits pass", []bench.ChatPhase{phase(1000, 980, 50*time.Millisecond, 0)}, 1000},
		{"a failing low rate does not hide a passing high one", []bench.ChatPhase{phase(500, 500, time.Second, 0), phase(1000, 1000, time.Millisecond, 0)}, 1000},
	} {
		if got := Sustainable(tc.phases); got != tc.want {
			t.Errorf("%s: Sustainable = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestWriteShowsFiguresRatiosAndTargets(t *testing.T) {
	t.Parallel()
	charla := Figures{
		Idle: &bench.IdleResult{Users: 10, Levels: []bench.IdleLevel{{Conns: 10000, PerSec: 2000, PerConnKiB: 20}}, Storm: &bench.StormResult{Clients: 5, Reconnected: 5, Took: 2 * time.Second, FailuresBy: map[string]int{"HTTP 503": 7, "network": 1}}},
		Chat: &bench.ChatResult{Pairs: 3, Phases: []bench.ChatPhase{phase(2000, 2000, 8*time.Millisecond, 0)}},
	}
	relay := Figures{
		Idle: &bench.IdleResult{Levels: []bench.IdleLevel{{Conns: 10000, PerSec: 5000, PerConnKiB: 16}}, Storm: &bench.StormResult{Clients: 5, Reconnected: 5, Took: time.Second}},
		Chat: &bench.ChatResult{Pairs: 3, Phases: []bench.ChatPhase{phase(2000, 2000, 2*time.Millisecond, 0)}},
	}
	var b bytes.Buffer
	Write(&b, Scenario{Key: "sqlite", Title: "One process, SQLite", Command: "go run ./cmd/charla-load -targets sqlite", Phase: time.Second, Charla: charla, Relay: relay, Err: errors.New("boom\nsecond line")})
	out := b.String()
	for _, want := range []string{
		"## One process, SQLite",
		"`go run ./cmd/charla-load -targets sqlite`",
		"**Stopped early:** boom / second line",
		"| p99 at 2,000 msg/s (ms) | ≤ 10 | 8.00 | 2.00 | 4.00 | yes |",
		"| handshakes/s at 10,000 conns | ≥ 4,000 | 2000 | 5000 | 0.40 | **no** |",
		"| max sustainable rate (msg/s) | ≥ 10,000 (5,000 at least) | 2000 | 2000 | 1.00 | **no** |",
		"| RSS KiB per idle conn at 19,000 conns | ≤ 12 | not run |",
		"| 10000 | 2000 | 5000 | 0.40 | 20.0 | 16.0 | 1.25 |",
		"| 5 | 5 | 2.00 | 1.00 | 2.00 | 7× HTTP 503, 1× network | none |",
		"| 2000 | 2000 | 0.00 | 0.00 | 8.00 | 8.00 | 0 | none |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestLostMessagesNeverMeetALatencyOrCPUTarget(t *testing.T) {
	t.Parallel()
	allLost := bench.ChatPhase{Rate: 2000, Sent: 20000, Lost: 20000, Achieved: 2000}
	cheap := bench.ChatPhase{Rate: 5000, Sent: 50000, Lost: 10, Delivered: 49990, Achieved: 5000, P99: time.Millisecond, CPU: time.Second}
	var b bytes.Buffer
	Write(&b, Scenario{Key: "sqlite", Title: "t", Charla: Figures{Chat: &bench.ChatResult{Phases: []bench.ChatPhase{allLost, cheap}}}})
	out := b.String()
	for _, want := range []string{
		"| p99 at 2,000 msg/s (ms) | ≤ 10 | messages lost |  |  | **no** |",
		"| server CPU s per 1,000 msgs at 5,000 msg/s | ≤ 0.25 | messages lost |  |  | **no** |",
		"| 2000 | 2000 | — | — | — | — | 20000 of 20000 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestApartSoakJudgedOnAcknowledgedLosses: the apart soak's goal counts acknowledged
// messages never delivered; sends refused with an error (pushback), late deliveries and
// unanswered sends are reported beside it, and the soak's line splits every message written.
func TestApartSoakJudgedOnAcknowledgedLosses(t *testing.T) {
	t.Parallel()
	soak := func(ackedLost int64) Figures {
		o := bench.Outcome{Delivered: 119000, Late: 400, AckedLost: ackedLost, Refused: 500, Unanswered: 100 - ackedLost}
		p := bench.ChatPhase{Rate: 2000, Duration: time.Minute, Sent: 120000, Delivered: 119000, Lost: 1000, Late: 400,
			AckErrors: map[int]int64{503: 500}, Achieved: 2000, Outcome: o}
		return Figures{Chat: &bench.ChatResult{Phases: []bench.ChatPhase{phase(2000, 2000, 8*time.Millisecond, 0)}, Soak: &p}}
	}
	for _, tc := range []struct {
		ackedLost int64
		want      []string
	}{
		{0, []string{
			"| acknowledged messages lost in the soak (2,000 msg/s for 60 s) | 0 | 0 |  |  | yes |",
			"| soak: sends refused with an error (pushback; the client sends them again) | (reported) | 500 |",
			"| soak: delivered after the grace (by a minute after the soak) | (reported) | 400 |",
			"| soak: sends neither answered nor delivered by a minute after the soak | (reported) | 100 |",
			"Of the 120000 written: 119000 delivered in time, 400 late, **0 acknowledged and lost**, 500 refused, 100 unanswered (by the end of the wait after the soak).",
		}},
		{3, []string{
			"| acknowledged messages lost in the soak (2,000 msg/s for 60 s) | 0 | 3 |  |  | **no** |",
			"**3 acknowledged and lost**, 500 refused, 97 unanswered (by the end of the wait after the soak).",
		}},
	} {
		var b bytes.Buffer
		Write(&b, Scenario{Key: "apart", Title: "Apart", Charla: soak(tc.ackedLost)})
		out := b.String()
		for _, want := range tc.want {
			if !strings.Contains(out, want) {
				t.Errorf("acked lost %d: report lacks %q:\n%s", tc.ackedLost, want, out)
			}
		}
	}
}
