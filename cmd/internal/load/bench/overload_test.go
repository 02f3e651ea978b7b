package bench

import (
	"context"
	"testing"
	"time"

	"github.com/charla/charla/cmd/internal/load/hist"
	"github.com/charla/charla/cmd/internal/load/provision"
	"github.com/charla/charla/cmd/internal/load/relay"
)

// TestOverloadCountsOnTheRelay runs the three phases against a relay, lossless and one
// that drops every 7th message (acknowledged all the same): every message is accounted
// for, the acknowledged ones the relay dropped are lost acked, and the lossless relay
// recovers in the first window. The threshold is a minute, longer than any message can
// take before the drain ends, so a window is good exactly when all its messages arrived.
func TestOverloadCountsOnTheRelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		drop int64
	}{{"lossless", 0}, {"every 7th dropped", 7}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := relayTarget(t, relay.Options{DropEvery: tc.drop})
			cfg := OverloadConfig{
				Pairs: 4, BaseRate: 40, Baseline: time.Second, Rate: 200, Overload: time.Second, Recovery: time.Second,
				Drain: 10 * time.Second, Workers: 2, Window: 250 * time.Millisecond, MaxP99: time.Minute,
			}
			if tc.drop > 0 {
				cfg.Drain = 3 * time.Second // the dropped messages hold every drain to its end
			}
			res, err := RunOverload(context.Background(), testOptions(), target, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Phases) != 3 {
				t.Fatalf("%d phases, want 3", len(res.Phases))
			}
			var sent, lostAcked int64
			for i, ph := range res.Phases {
				checkOverloadPhase(t, ph, OverloadPhaseNames[i], []int{40, 200, 40}[i])
				sent += ph.Sent
				lostAcked += ph.LostAcked
			}
			// The relay counts every message it relays, the warm-up's first.
			want := int64(0)
			if tc.drop > 0 {
				want = (res.Warmup+sent)/tc.drop - res.Warmup/tc.drop
			}
			if lostAcked != want {
				t.Errorf("lost acked %d of %d sent, want %d", lostAcked, sent, want)
			}
			checkWindows(t, res)
			if tc.drop == 0 && (!res.Recovered || res.RecoveredIn != 0) {
				t.Errorf("recovered %v in %v, want at once; windows %+v", res.Recovered, res.RecoveredIn, res.Windows)
			}
			// One span: the recovery is as long as the baseline, four windows. By write
			// time: it may also hold overload messages written late.
			if res.Span != time.Second || len(res.Spans) != 1 || res.Spans[0].Sent < res.Phases[2].Sent {
				t.Errorf("span %v, spans %+v; want 1s, one span of the recovery's %d messages at least", res.Span, res.Spans, res.Phases[2].Sent)
			}
			if res.SpanRecovered != (tc.drop == 0) {
				t.Errorf("span recovered %v, want %v (lost messages fail it); spans %+v", res.SpanRecovered, tc.drop == 0, res.Spans)
			}
			var baseline int64
			for _, w := range res.BaselineWindows {
				baseline += w.Sent
			}
			if len(res.BaselineWindows) != 4 || baseline != res.Phases[0].Sent {
				t.Errorf("%d baseline windows of %d messages, want 4 of %d", len(res.BaselineWindows), baseline, res.Phases[0].Sent)
			}
			if res.RSSBefore <= 0 || res.RSSPeak < res.RSSBefore || res.RSSAfter <= 0 || len(res.RSS) == 0 {
				t.Errorf("RSS before %d peak %d after %d, %d samples; want > 0, peak ≥ before, samples", res.RSSBefore, res.RSSPeak, res.RSSAfter, len(res.RSS))
			}
			if res.Dropped != 0 {
				t.Errorf("%d connections closed, want none", res.Dropped)
			}
		})
	}
}

// checkOverloadPhase checks one phase's counts add up: everything offered written, every
// written message acknowledged, and each either delivered or lost acked.
func checkOverloadPhase(t *testing.T, ph OverloadPhase, name string, rate int) {
	t.Helper()
	if ph.Name != name || ph.Rate != rate || ph.Duration != time.Second {
		t.Errorf("phase %q at %d msg/s for %v, want %q at %d for 1s", ph.Name, ph.Rate, ph.Duration, name, rate)
	}
	if ph.Sent == 0 || ph.Sent+ph.Unsent+ph.WriteErrs != ph.Offered || ph.Offered != int64(rate) {
		t.Errorf("%s: sent %d + unsent %d + write errors %d, want offered %d = %d (and > 0 sent)", name, ph.Sent, ph.Unsent, ph.WriteErrs, ph.Offered, rate)
	}
	if ph.Acks != ph.Sent || len(ph.AckErrors) != 0 || ph.NoReply != 0 {
		t.Errorf("%s: %d acks, errors %v, %d unanswered; want %d acks only", name, ph.Acks, ph.AckErrors, ph.NoReply, ph.Sent)
	}
	if ph.Delivered+ph.LostAcked != ph.Sent || ph.LostUnacked != 0 || ph.Dups != 0 {
		t.Errorf("%s: delivered %d + lost acked %d (unacked %d, dups %d), want %d sent", name, ph.Delivered, ph.LostAcked, ph.LostUnacked, ph.Dups, ph.Sent)
	}
	if ph.P50 > ph.P99 || ph.P99 > ph.Max || ph.Max <= 0 || ph.ReplyP99 <= 0 {
		t.Errorf("%s: p50 %v p99 %v max %v reply p99 %v, want 0 < p50 <= p99 <= max and a reply latency", name, ph.P50, ph.P99, ph.Max, ph.ReplyP99)
	}
}

// checkWindows checks the windows cover the overload and the recovery, a quarter second
// each, and hold every message written then, the lost ones undelivered.
func checkWindows(t *testing.T, res OverloadResult) {
	t.Helper()
	if len(res.Windows) != 8 || res.Windows[0].Start != -time.Second || res.Windows[4].Start != 0 || res.Windows[7].Start != 750*time.Millisecond {
		t.Fatalf("windows %+v, want 8 from -1s to 750ms", res.Windows)
	}
	ov, rec := res.Phases[1], res.Phases[2]
	var sent, delivered int64
	for _, w := range res.Windows {
		sent += w.Sent
		delivered += w.Delivered
		if w.OK != (w.Sent > 0 && w.Delivered == w.Sent) {
			t.Errorf("window at %v: OK %v with %d of %d delivered", w.Start, w.OK, w.Delivered, w.Sent)
		}
	}
	if sent != ov.Sent+rec.Sent || delivered != ov.Delivered+rec.Delivered {
		t.Errorf("windows hold %d sent, %d delivered; want %d and %d", sent, delivered, ov.Sent+rec.Sent, ov.Delivered+rec.Delivered)
	}
}

// TestOverloadWindowsBySendTime places messages by hand: a message written during the
// overload and delivered late in the recovery counts in its overload window, not in a
// recovery window; a window is good when all its messages arrived within the threshold.
func TestOverloadWindowsBySendTime(t *testing.T) {
	t.Parallel()
	const s = int64(time.Second)
	cfg := OverloadConfig{BaseRate: 2, Baseline: time.Second, Rate: 4, Overload: 2 * time.Second, Recovery: 3 * time.Second}
	specs := cfg.specs()
	tr := newTracker(specs)
	o := &overloadRun{cfg: cfg, s: &chatSession{tr: tr, pairs: make([][2]provision.User, 1)}}
	o.recipient(tr, 0)
	segs := []*segment{
		{k: 1, spec: specs[1], offered: 8, begin: 10 * s},
		{k: 2, spec: specs[2], offered: 6, begin: 12 * s},
	}
	// message (offset from its phase's first seq) → written and delivered, in seconds
	// since the tracker's base; delivered 0: never.
	type msg struct {
		phase, i        int
		sent, delivered float64
	}
	for _, m := range []msg{
		{1, 0, 10.1, 10.2}, {1, 1, 10.5, 10.6},
		{1, 2, 11.9, 13.5}, // overload, delivered in the recovery's second window
		{2, 0, 12.1, 12.15}, {2, 1, 12.6, 12.65},
		{2, 2, 13.1, 13.9},                   // too slow: 800 ms
		{2, 3, 14.2, 14.25}, {2, 4, 14.7, 0}, // lost
	} {
		seq := tr.start[m.phase] + int64(m.i)
		tr.sentAt[seq].Store(int64(m.sent * float64(s)))
		if m.delivered > 0 {
			tr.got[seq].Store(true)
			o.deliveredAt[seq].Store(int64(m.delivered * float64(s)))
		}
	}
	ws, _ := o.windows(segs, 12*s, 500*time.Millisecond)
	type want struct {
		start           time.Duration
		sent, delivered int64
		ok              bool
	}
	wants := []want{
		{-2 * time.Second, 2, 2, true}, {-time.Second, 1, 1, false}, // its message took 1.6 s
		{0, 2, 2, true}, {time.Second, 1, 1, false}, {2 * time.Second, 2, 1, false},
	}
	if len(ws) != len(wants) {
		t.Fatalf("%d windows %+v, want %d", len(ws), ws, len(wants))
	}
	for i, w := range wants {
		g := ws[i]
		if g.Start != w.start || g.Sent != w.sent || g.Delivered != w.delivered || g.OK != w.ok {
			t.Errorf("window %d: start %v sent %d delivered %d ok %v, want %v %d %d %v", i, g.Start, g.Sent, g.Delivered, g.OK, w.start, w.sent, w.delivered, w.ok)
		}
	}
	if ws[2].P99 > 100*time.Millisecond {
		t.Errorf("first recovery window p99 %v, want ≤ 100ms (the overload's late message is not in it)", ws[2].P99)
	}
}

func TestRecoveryTime(t *testing.T) {
	t.Parallel()
	w := func(start int, ok bool) OverloadWindow {
		return OverloadWindow{Start: time.Duration(start) * time.Second, OK: ok}
	}
	for _, tc := range []struct {
		name    string
		windows []OverloadWindow
		at      time.Duration
		found   bool
		// the first good window after the overload
		first      time.Duration
		firstFound bool
	}{
		{"none", nil, 0, false, 0, false},
		{"good at once; the overload's windows do not count", []OverloadWindow{w(-2, false), w(-1, false), w(0, true), w(1, true)}, 0, true, 0, true},
		{"after a bad second", []OverloadWindow{w(-1, true), w(0, false), w(1, true), w(2, true)}, time.Second, true, time.Second, true},
		{"a relapse restarts the count", []OverloadWindow{w(0, true), w(1, false), w(2, true), w(3, false), w(4, true)}, 4 * time.Second, true, 0, true},
		{"bad at the end", []OverloadWindow{w(0, true), w(1, true), w(2, false)}, 0, false, 0, true},
		{"overload only", []OverloadWindow{w(-1, true)}, 0, false, 0, false},
	} {
		at, found := RecoveryTime(tc.windows)
		if at != tc.at || found != tc.found {
			t.Errorf("%s: RecoveryTime = %v, %v; want %v, %v", tc.name, at, found, tc.at, tc.found)
		}
		if first, ok := firstOK(tc.windows); ok != tc.firstFound || first != tc.first {
			t.Errorf("%s: firstOK = %v, %v; want %v, %v", tc.name, first, ok, tc.first, tc.firstFound)
		}
	}
}

// TestSpansJudgeAsManyMessagesAsTheThreshold: one slow second among 2,000 messages a second
// fails its own window but not a span of ten windows (ten slow messages are under 1 % of
// 20,000); a span that holds a lost message, or as many slow seconds as make up 1 %, fails.
func TestSpansJudgeAsManyMessagesAsTheThreshold(t *testing.T) {
	t.Parallel()
	const perWindow = 2000
	threshold := 10 * time.Millisecond
	// window i (Start i-2 s: two overload windows first) → how many of its messages are
	// slow (50 ms; the others take 5 ms), and how many never arrived.
	slow := map[int]int{0: perWindow, 1: perWindow, 2: 300, 5: 40, 14: 200, 15: 200, 16: 200}
	lost := map[int]int64{20: 1}
	const n = 22
	ws := make([]OverloadWindow, n)
	hs := make([]hist.Histogram, n)
	for i := range ws {
		ws[i] = OverloadWindow{Start: time.Duration(i-2) * time.Second, Sent: perWindow, Delivered: perWindow - lost[i]}
		for k := range int(ws[i].Delivered) {
			d := 5 * time.Millisecond
			if k < slow[i] {
				d = 50 * time.Millisecond
			}
			hs[i].Record(d)
		}
	}
	sp := spans(ws, hs, 10, threshold)
	// Spans start at windows 2..12 (Start 0..10 s): the last one ends with window 21.
	if len(sp) != 11 || sp[0].Start != 0 || sp[10].Start != 10*time.Second {
		t.Fatalf("%d spans from %v to %v, want 11 from 0s to 10s", len(sp), sp[0].Start, sp[len(sp)-1].Start)
	}
	for i, want := range []bool{false, true, true, false, false, false, false, false, false, false, false} {
		// A span from s holds windows s+2 to s+11. Start 0: windows 2 and 5 hold 340 slow
		// messages, 1.7 % of the span. Start 1-2: window 5's 40 are 0.2 %. Start 3-8:
		// some of windows 14-16 too (over 1 %). Start 9-10: the lost message.
		if sp[i].OK != want {
			t.Errorf("span from %v: OK %v (sent %d delivered %d p99 %v), want %v", sp[i].Start, sp[i].OK, sp[i].Sent, sp[i].Delivered, sp[i].P99, want)
		}
	}
	if sp[1].Sent != 10*perWindow || sp[1].P99 > threshold {
		t.Errorf("span from 1s: sent %d p99 %v, want %d and ≤ %v", sp[1].Sent, sp[1].P99, 10*perWindow, threshold)
	}
	if at, ok := RecoveryTime(sp); ok {
		t.Errorf("RecoveryTime(spans) = %v, true; want not recovered (the last span lost a message)", at)
	}
	delete(lost, 20)
	ws[20].Delivered = perWindow
	slow[14], slow[15], slow[16] = 0, 0, 0
	for _, i := range []int{14, 15, 16, 20} {
		hs[i] = hist.Histogram{}
		for range perWindow {
			hs[i].Record(5 * time.Millisecond)
		}
	}
	if at, ok := RecoveryTime(spans(ws, hs, 10, threshold)); !ok || at != time.Second {
		t.Errorf("RecoveryTime(spans) after mending = %v, %v; want 1s, true", at, ok)
	}
	// Window 5's 40 slow messages fail its own window under the per-window rule.
	if w := spans(ws, hs, 1, threshold); w[3].OK || !w[4].OK {
		t.Errorf("one-window spans from 3s and 4s: OK %v, %v; want false, true", w[3].OK, w[4].OK)
	}
}

// TestSpanIsTheBaselinesLength: the recovery is judged in spans as long as the baseline
// whose p99 is the threshold, or as the whole recovery when that is shorter.
func TestSpanIsTheBaselinesLength(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ baseline, recovery, want time.Duration }{
		{10 * time.Second, 20 * time.Second, 10 * time.Second},
		{10 * time.Second, 5 * time.Second, 5 * time.Second},
	} {
		if got := (OverloadConfig{Baseline: tc.baseline, Recovery: tc.recovery}).span(); got != tc.want {
			t.Errorf("baseline %v, recovery %v: span %v, want %v", tc.baseline, tc.recovery, got, tc.want)
		}
	}
}

func TestOverloadConfigCheck(t *testing.T) {
	t.Parallel()
	good := OverloadConfig{Pairs: 1, BaseRate: 10, Baseline: time.Second, Rate: 20, Overload: time.Second, Recovery: time.Second, Drain: time.Second}
	if err := good.check(); err != nil {
		t.Errorf("good config: %v", err)
	}
	for _, mod := range []func(*OverloadConfig){
		func(c *OverloadConfig) { c.Pairs = 0 },
		func(c *OverloadConfig) { c.Rate = 0 },
		func(c *OverloadConfig) { c.Recovery = 0 },
		func(c *OverloadConfig) { c.Drain = 0 },
		func(c *OverloadConfig) { c.Rate, c.Overload = 100000, time.Minute }, // 6 million messages
	} {
		c := good
		mod(&c)
		if err := c.check(); err == nil {
			t.Errorf("config %+v: no error", c)
		}
	}
}
