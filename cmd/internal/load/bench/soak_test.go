package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/charla/charla/cmd/internal/load/relay"
	"github.com/charla/charla/cmd/internal/load/soak"
	"github.com/charla/charla/cmd/internal/load/wire"
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
				if ph.Lost != 0 || ph.Dups != 0 || ph.Late != 0 || res.SeqGaps != 0 || res.SeqRepeats != 0 {
					t.Errorf("lost %d dups %d late %d gaps %d repeats %d, want none", ph.Lost, ph.Dups, ph.Late, res.SeqGaps, res.SeqRepeats)
				}
				if want := (Outcome{Delivered: ph.Sent}); res.Outcome != want {
					t.Errorf("outcome %+v, want %+v", res.Outcome, want)
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
				if ph.Lost == 0 || res.SeqGaps < ph.Lost || res.Replayed != 0 || ph.Dups != 0 {
					t.Errorf("nothing replayed: lost %d, gaps %d, replayed %d, dups %d; want losses, as many gaps at least, no replay, no duplicate", ph.Lost, res.SeqGaps, res.Replayed, ph.Dups)
				}
				if want := (Outcome{Delivered: ph.Delivered, Late: ph.Late, AckedLost: ph.Lost - ph.Late}); res.Outcome != want {
					t.Errorf("outcome %+v, want %+v: the skipped messages acknowledged and lost", res.Outcome, want)
				}
			case "repeat":
				if ph.Dups != res.ResumeOK || res.SeqRepeats != res.ResumeOK || ph.Lost != 0 {
					t.Errorf("one event too many per resume: dups %d, repeats %d, lost %d; want %d, %d, 0", ph.Dups, res.SeqRepeats, ph.Lost, res.ResumeOK, res.ResumeOK)
				}
			}
		})
	}
}

// TestSoakOutcome feeds the soak's accounting, through its own frame handlers, a known
// mix of 20 messages offered, 18 written: each lands in one count of the outcome, and the
// verdict's figure (lost acked) holds only the acknowledged ones never read.
func TestSoakOutcome(t *testing.T) {
	t.Parallel()
	specs := make([]phaseSpec, warmups, warmups+1)
	for i := range specs {
		specs[i] = phaseSpec{rate: 1, dur: time.Second}
	}
	specs = append(specs, phaseSpec{rate: 20, dur: time.Second})
	tr := newTracker(specs)
	r := &soakRun{s: &chatSession{tr: tr}, closes: map[string]int64{}}
	r.slots = [2][]soakSlot{make([]soakSlot, 1), make([]soakSlot, 1)}
	recipient := r.recipient(tr, 0)
	first := tr.start[warmups]
	frame := func(format string, args ...any) wire.Frame {
		t.Helper()
		f, err := wire.Scan([]byte(fmt.Sprintf(format, args...)))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	ack := func(i int64) { tr.onSender(nil, frame(`{"type":"SERVER_ACK","pid":"c%d","payload":{}}`, first+i)) }
	refuse := func(i int64, code int) {
		tr.onSender(nil, frame(`{"type":"ERROR_NOTIFICATION","pid":"c%d","payload":{"code":%d,"message":"busy"}}`, first+i, code))
	}
	var eventSeq int64
	deliver := func(i int64) {
		eventSeq++
		recipient(nil, frame(`{"type":"NEW_CHAT_MESSAGE","seq":%d,"payload":{"clientMessageId":"L%d","text":"load#%d hola"}}`, eventSeq, first+i, first+i))
	}
	// Messages 0–6 acknowledged and read in time, 7 read in time without an ack (read
	// wins), 0 read twice; 8–9 acknowledged and read after the grace; 10–12 acknowledged
	// and never read; 13–14 refused with 503 and 15 with 500, never read; 16–17 never
	// answered nor read; 18–19 never written.
	for i := range int64(7) {
		ack(i)
		deliver(i)
	}
	deliver(7)
	deliver(0)
	for i := int64(8); i <= 12; i++ {
		ack(i)
	}
	refuse(13, 503)
	refuse(14, 503)
	refuse(15, 500)
	ph := ChatPhase{Offered: 20, Sent: 18, Delivered: tr.delivered(warmups)}
	tr.close(warmups) // the grace is over
	deliver(8)
	deliver(9)

	var res SoakResult
	r.settle(&res, ph)
	if want := (Outcome{Delivered: 8, Late: 2, AckedLost: 3, Refused: 3, Unanswered: 2}); res.Outcome != want {
		t.Errorf("outcome %+v, want %+v", res.Outcome, want)
	}
	o := res.Outcome
	if sum := o.Delivered + o.Late + o.AckedLost + o.Unacked(); sum != ph.Sent || o.Unacked() != 5 {
		t.Errorf("outcome %+v adds up to %d (unacked %d), want the %d written (5 unacked)", o, sum, o.Unacked(), ph.Sent)
	}
	if res.Phase.Late != 2 || res.Phase.Delivered != 8 || res.Phase.Sent != 18 {
		t.Errorf("phase late %d delivered %d sent %d, want 2, 8, 18", res.Phase.Late, res.Phase.Delivered, res.Phase.Sent)
	}
	if p := &tr.phases[warmups]; p.acks.Load() != 12 || p.dups.Load() != 1 || r.gaps.Load() != 0 || r.repeats.Load() != 0 {
		t.Errorf("%d acks, %d duplicates, %d gaps, %d repeats; want 12, 1, 0, 0", p.acks.Load(), p.dups.Load(), r.gaps.Load(), r.repeats.Load())
	}
	res.Phase.Dups = tr.phases[warmups].dups.Load()
	const want = "sent 18, delivered 8 (0 replayed), late 2, lost acked 3, refused 3, unanswered 2, duplicates 1,"
	if got := soakSummary(&res); !strings.HasPrefix(got, want) {
		t.Errorf("summary %q, want it to start %q", got, want)
	}
}
