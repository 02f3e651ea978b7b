package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/charla/charla/cmd/internal/load/relay"
	"github.com/charla/charla/cmd/internal/load/soak"
)

// TestSoakCountsAcrossResumes runs a short soak against the relay in its resume mode,
// recipients reconnecting all along: every message arrives exactly once, some by replay.
// The relay's resume faults (nothing replayed; one event replayed twice) show up as lost
// messages and seq gaps, and as duplicates and seq repeats.
func TestSoakCountsAcrossResumes(t *testing.T) {
	t.Parallel()
	for _, fault := range []string{"", "skip", "repeat", "kick"} {
		t.Run("fault="+fault, func(t *testing.T) {
			t.Parallel()
			ro := relay.Options{Resume: true, ResumeFault: fault}
			if fault == "kick" {
				ro = relay.Options{Resume: true, KickEvery: 25}
			}
			target := relayTarget(t, ro)
			cfg := SoakConfig{
				Pairs: 4, Rate: 80, Duration: 4 * time.Second, Grace: 3 * time.Second, Workers: 2,
				Churn: 5, Offline: 150 * time.Millisecond,
				Interval: time.Second, FlatAfter: time.Second, Bounds: soak.DefaultBounds,
				Procs: []soak.Proc{{Name: "relay", PID: os.Getpid(), Role: soak.Server}},
				Rest:  100 * time.Millisecond,
			}
			res, err := RunSoak(context.Background(), testOptions(), target, cfg)
			if err != nil {
				t.Fatal(err)
			}
			ph := res.Phase
			if ph.Sent == 0 || ph.Sent+ph.Unsent+ph.WriteErrs != ph.Offered || ph.Acks != ph.Sent {
				t.Errorf("sent %d unsent %d write errors %d acks %d, want all %d offered sent and acknowledged", ph.Sent, ph.Unsent, ph.WriteErrs, ph.Acks, ph.Offered)
			}
			back := res.ResumeOK + res.ResumeFailed
			if res.Reconnects < 5 || back != res.Reconnects+res.Mends || res.ResumeFailed != 0 || res.ReconnectErrors != 0 || res.Closed != 0 {
				t.Errorf("%d reconnections and %d mends, %d resumed, %d failed, %d never back, %d closed at the end; want at least 5, all resumed, none closed",
					res.Reconnects, res.Mends, res.ResumeOK, res.ResumeFailed, res.ReconnectErrors, res.Closed)
			}
			// Rows at 0, 1, 2, 3 and 4 s, each with the one process and cumulative counts.
			if len(res.Rows) != 5 || res.Rows[4].At < 4*time.Second || len(res.Rows[4].Samples) != 1 || res.Rows[4].Samples[0].RSS <= 0 {
				t.Fatalf("rows %+v, want 5 up to 4 s with the process's RSS", res.Rows)
			}
			for i := 1; i < len(res.Rows); i++ {
				a, b := res.Rows[i-1].Traffic, res.Rows[i].Traffic
				if b.Sent < a.Sent || b.Delivered < a.Delivered || b.Reconnects < a.Reconnects {
					t.Errorf("row %d traffic %+v after %+v: counts went down", i, b, a)
				}
			}
			if res.Rest == nil || res.Rest.At < 4*time.Second || len(res.Rest.Samples) != 1 || res.Rest.Traffic.Delivered != ph.Delivered {
				t.Errorf("rest sample %+v, want one after the load with every delivery counted", res.Rest)
			}
			if len(res.Checks) != 1 || len(res.Checks[0]) != len(soak.Figures) {
				t.Errorf("checks %+v, want one process's", res.Checks)
			}
			switch fault {
			case "", "kick":
				if ph.Lost != 0 || ph.AckedLost != 0 || ph.Dups != 0 || ph.Late != 0 || res.SeqGaps != 0 || res.SeqRepeats != 0 {
					t.Errorf("lost %d dups %d late %d gaps %d repeats %d, want none", ph.Lost, ph.Dups, ph.Late, res.SeqGaps, res.SeqRepeats)
				}
				if res.Replayed == 0 || res.ReplayMax <= 0 || ph.Delivered != ph.Sent {
					t.Errorf("replayed %d (max latency %v), delivered %d of %d; want some replayed, all delivered", res.Replayed, res.ReplayMax, ph.Delivered, ph.Sent)
				}
				kicked := res.ServerCloses["recipient 1011 events unavailable: reconnect and resume"]
				// A kicked recipient is mended, or reconnected by the churn if its turn comes first.
				if fault == "kick" && (res.Mends == 0 || kicked < res.Mends || len(res.ServerCloses) != 1) {
					t.Errorf("%d mends, closes %v; want only the relay's kicks, some mended", res.Mends, res.ServerCloses)
				}
				if fault == "" && (res.Mends != 0 || len(res.ServerCloses) != 0) {
					t.Errorf("%d mends, closes %v; want none", res.Mends, res.ServerCloses)
				}
			case "skip":
				if ph.Lost == 0 || ph.AckedLost != ph.Lost || res.SeqGaps < ph.Lost || res.Replayed != 0 || ph.Dups != 0 {
					t.Errorf("nothing replayed: lost %d, gaps %d, replayed %d, dups %d; want losses, as many gaps at least, no replay, no duplicate", ph.Lost, res.SeqGaps, res.Replayed, ph.Dups)
				}
			case "repeat":
				if ph.Dups != res.ResumeOK || res.SeqRepeats != res.ResumeOK || ph.Lost != 0 {
					t.Errorf("one event too many per resume: dups %d, repeats %d, lost %d; want %d, %d, 0", ph.Dups, res.SeqRepeats, ph.Lost, res.ResumeOK, res.ResumeOK)
				}
			}
		})
	}
}
