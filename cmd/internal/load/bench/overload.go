package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla/charla/cmd/internal/load/client"
	"github.com/charla/charla/cmd/internal/load/hist"
	"github.com/charla/charla/cmd/internal/load/procfs"
	"github.com/charla/charla/cmd/internal/load/sched"
	"github.com/charla/charla/cmd/internal/load/wire"
)

// OverloadConfig sets the overload mode: on the same chat pairs, a baseline at BaseRate,
// then Rate (beyond what the server sustains) for Overload, then BaseRate again for
// Recovery, with no pause between the overload and the recovery, so the backlog the
// overload left is still there when the recovery begins.
type OverloadConfig struct {
	// Pairs is the number of sender→recipient pairs, as in the chat mode.
	Pairs int
	// BaseRate is the total rate of the baseline and the recovery, in messages per second.
	BaseRate int
	// Baseline is how long BaseRate is offered before the overload; the run then waits
	// until its messages have arrived (at most Drain), so the overload starts at rest.
	Baseline time.Duration
	// Rate is the overload's total rate and Overload how long it is offered.
	Rate     int
	Overload time.Duration
	// Recovery is how long BaseRate is offered again, at once after the overload.
	Recovery time.Duration
	// Drain bounds the wait, after the last write, for every message and reply; a
	// message that has not arrived by then is lost.
	Drain time.Duration
	// Workers write for the scheduler, as in the chat mode.
	Workers int
	// Window is the width of the latency windows and the interval of the RSS samples
	// (1 s when 0).
	Window time.Duration
	// MaxP99, when > 0, is the p99 a recovery window must not exceed; otherwise the
	// baseline's p99 is.
	MaxP99 time.Duration
}

func (c OverloadConfig) window() time.Duration {
	if c.Window > 0 {
		return c.Window
	}
	return time.Second
}

// span is the length of the spans the recovery is judged on (OverloadResult.Span): the
// baseline's, or the recovery's when that is shorter.
func (c OverloadConfig) span() time.Duration { return min(c.Baseline, c.Recovery) }

// specs are the three phases: baseline, overload, recovery.
func (c OverloadConfig) specs() []phaseSpec {
	return []phaseSpec{{rate: c.BaseRate, dur: c.Baseline}, {rate: c.Rate, dur: c.Overload}, {rate: c.BaseRate, dur: c.Recovery}}
}

// OverloadPhaseNames name the phases of OverloadResult.Phases, in order.
var OverloadPhaseNames = [3]string{"baseline", "overload", "recovery"}

// OverloadPhase is the figures of one phase. Every message is counted in the phase that
// scheduled it, whenever it was written or delivered.
type OverloadPhase struct {
	Name     string
	Rate     int
	Duration time.Duration
	// Offered messages were scheduled; Sent written; Unsent still unwritten a second
	// after the phase's end (the writers were blocked: given up); WriteErrs failed writes.
	Offered, Sent, Unsent, WriteErrs int64
	// Achieved is Sent over the phase's duration, or until its last write if later.
	Achieved float64
	// LagP99 and LagMax: how late the writes were against the schedule (an open-loop
	// tool whose writes block shows it here; latency counts from the write).
	LagP99, LagMax time.Duration
	// Delivered: NEW_CHAT_MESSAGE read by the recipient by the end of the drain; Dups
	// read again.
	Delivered, Dups int64
	// Acks are SERVER_ACKs, AckErrors ERROR_NOTIFICATIONs by code (503: pushback),
	// NoReply written messages with neither by the end of the drain.
	Acks      int64
	AckErrors map[int]int64
	NoReply   int64
	// LostAcked were acknowledged but never delivered: the target allows none.
	// LostUnacked were written, not acknowledged (refused or unanswered) and never
	// delivered: the client knows to send them again.
	LostAcked, LostUnacked int64
	// Latency (write to delivery) and reply latency (write to SERVER_ACK or error).
	P50, P99, Max      time.Duration
	ReplyP50, ReplyP99 time.Duration
	// RSSPeak is the highest server RSS sampled while the phase was offered.
	RSSPeak int64
}

// OverloadWindow is one window of the overload and recovery by write time: the messages
// written in it, whichever phase scheduled them, and their fate.
type OverloadWindow struct {
	// Start is relative to the end of the overload: negative during it.
	Start           time.Duration
	Sent, Delivered int64
	P50, P99, Max   time.Duration
	// OK: messages were written in the window, every one was delivered and their p99
	// is at most the threshold.
	OK bool
}

// RSSSample is the server's RSS (summed over its processes) at At, relative to the start
// of the overload.
type RSSSample struct {
	At  time.Duration
	RSS int64
}

// OverloadResult is the overload mode's figures.
type OverloadResult struct {
	Config    OverloadConfig
	Provision time.Duration
	// Warmup and WarmupLost: messages of the warm-up rounds, as in the chat mode.
	Warmup, WarmupLost int64
	// Phases are the baseline, the overload and the recovery (OverloadPhaseNames).
	Phases []OverloadPhase
	// Threshold is the p99 a recovery window must not exceed: the baseline's, or
	// Config.MaxP99.
	Threshold time.Duration
	// Windows cover the overload and the recovery, Config.Window each, by write time.
	Windows []OverloadWindow
	// Recovered says whether the recovery windows end good; RecoveredIn is then the
	// start of the first window from which every window is good (0: at once).
	Recovered   bool
	RecoveredIn time.Duration
	// FirstOK is the Start of the first good window at or after the overload's end, if
	// FirstOKFound: later than RecoveredIn never, earlier when p99 relapsed after it.
	FirstOK      time.Duration
	FirstOKFound bool
	// BaselineWindows are the baseline's messages in windows of Config.Window by write
	// time, judged against Threshold as the recovery's windows are: how that per-window
	// rule judges a server at rest. The threshold is a p99 of the whole baseline; a
	// window's p99 is estimated from a tenth of those messages or fewer and scatters
	// around it, so even at rest some windows come out above it.
	BaselineWindows []OverloadWindow
	// Span and Spans judge the recovery the way the threshold was measured: Spans[i]
	// holds the messages written in Span from Spans[i].Start (one span starting at each
	// recovery window), OK when all of them arrived and their p99 is at most Threshold.
	// Span is the baseline's duration (the recovery's when that is shorter), so a span's
	// p99 is estimated from as many messages as the threshold.
	Span  time.Duration
	Spans []OverloadWindow
	// SpanRecovered says whether the last span is OK; SpanRecoveredIn is then the Start
	// of the first span from which every span is OK. The verdict's "p99 back within 5 s"
	// is SpanRecoveredIn (report.OverloadVerdict).
	SpanRecovered   bool
	SpanRecoveredIn time.Duration
	// BaselineDrain is the wait after the baseline, Drain the wait after the recovery's
	// last write until every message and reply arrived (or Config.Drain ended).
	BaselineDrain, Drain time.Duration
	// Server RSS: just before the overload, the highest sample from then to the end of
	// the drain, the last sample of the recovery, and after the drain.
	RSSBefore, RSSPeak, RSSRecoveryEnd, RSSAfter int64
	RSSPeakAt                                    time.Duration
	RSS                                          []RSSSample
	// Dropped is how many connections were closed by the end.
	Dropped int
}

// LostAcked sums the acknowledged messages never delivered, over every phase.
func (r *OverloadResult) LostAcked() int64 {
	var n int64
	for _, p := range r.Phases {
		n += p.LostAcked
	}
	return n
}

// maxOverloadMessages bounds the messages of one run: the tracker and the overload's
// own arrays hold about 26 bytes per message.
const maxOverloadMessages = 5_000_000

func (c OverloadConfig) check() error {
	switch {
	case c.Pairs < 1 || c.BaseRate < 1 || c.Rate < 1:
		return fmt.Errorf("overload: want at least one pair, a base rate and a rate, got %d pairs, %d and %d msg/s", c.Pairs, c.BaseRate, c.Rate)
	case c.Baseline <= 0 || c.Overload <= 0 || c.Recovery <= 0 || c.Drain <= 0:
		return fmt.Errorf("overload: baseline %v, overload %v, recovery %v and drain %v must all be > 0", c.Baseline, c.Overload, c.Recovery, c.Drain)
	}
	var n int64
	for _, s := range c.specs() {
		n += sched.Due(float64(s.rate), s.dur)
	}
	if n > maxOverloadMessages {
		return fmt.Errorf("overload: %d messages in all, want at most %d", n, maxOverloadMessages)
	}
	return nil
}

// overloadRun is one run's shared state: the session and, per message seq, when its
// first delivery and its reply were read (ns since the tracker's base, 0: not yet).
type overloadRun struct {
	cfg  OverloadConfig
	opts *Options
	t    *Target
	s    *chatSession

	once        sync.Once
	deliveredAt []atomic.Int64
	repliedAt   []atomic.Int64
}

// recipient returns recipient i's handler: it notes when each message first arrived and
// hands it to the tracker. openChat calls it for every recipient before it dials.
func (o *overloadRun) recipient(tr *tracker, _ int) client.Handler {
	o.once.Do(func() {
		o.deliveredAt = make([]atomic.Int64, len(tr.got))
		o.repliedAt = make([]atomic.Int64, len(tr.got))
	})
	return func(_ *client.Conn, f wire.Frame) {
		if string(f.Type) != wire.TypeNewMsg {
			return
		}
		now := max(tr.now(), 1)
		seq, ok := seqOf(wire.Field(f.Payload, "clientMessageId"), "L")
		if !ok {
			seq, ok = seqOf(wire.Field(f.Payload, "text"), "load#")
		}
		if ok && seq >= 0 && seq < int64(len(o.deliveredAt)) {
			o.deliveredAt[seq].CompareAndSwap(0, now)
		}
		tr.onMessage(f, false)
	}
}

// replied notes the first reply to seq (the tracker's hook).
func (o *overloadRun) replied(seq, now int64) {
	if seq >= 0 && seq < int64(len(o.repliedAt)) {
		o.repliedAt[seq].CompareAndSwap(0, max(now, 1))
	}
}

// RunOverload provisions and connects the pairs, warms up, runs the baseline and waits
// for it to drain, then the overload and the recovery back to back, waits for the drain
// and measures: loss, acknowledgements, latency per window of write time, recovery and
// the server's RSS (sampled every Window throughout).
func RunOverload(ctx context.Context, opts *Options, t *Target, cfg OverloadConfig) (OverloadResult, error) {
	res := OverloadResult{Config: cfg}
	if err := cfg.check(); err != nil {
		return res, err
	}
	o := &overloadRun{cfg: cfg, opts: opts, t: t}
	specs := cfg.specs()
	s, err := openChat(ctx, opts, t, cfg.Pairs, specs, ChatConfig{Grace: cfg.Drain, Workers: cfg.Workers}, o.recipient)
	if err != nil {
		return res, err
	}
	defer s.close()
	o.s = s
	hook := o.replied
	s.tr.replied.Store(&hook)
	res.Provision, res.Warmup, res.WarmupLost = s.provision, s.warmup, s.warmupLost

	smp := startRSSSampler(t, cfg.window())
	base, err := o.backToBack(ctx, []int{warmups}, specs[:1])
	if err != nil {
		smp.stop()
		return res, err
	}
	res.BaselineDrain = base.drain
	before, _, err := t.Sample()
	if err != nil {
		smp.stop()
		return res, err
	}
	opts.logf(t, "overload: baseline %d msg/s for %v done (drained in %v), server RSS %.0f MiB; now %d msg/s for %v, then %d msg/s for %v",
		cfg.BaseRate, cfg.Baseline, base.drain.Round(time.Millisecond), mib(before.RSS), cfg.Rate, cfg.Overload, cfg.BaseRate, cfg.Recovery)
	rest, err := o.backToBack(ctx, []int{warmups + 1, warmups + 2}, specs[1:])
	samples, sampleErr := smp.stop()
	if err != nil {
		return res, err
	}
	after, _, err := t.Sample()
	if err != nil {
		return res, err
	}
	res.Drain = rest.drain
	res.Dropped = dropped(s.senders) + dropped(s.recipients)
	o.collect(&res, append(base.segs, rest.segs...), rest.segs[0].begin, samples, before.RSS, after.RSS)
	opts.logf(t, "overload done: %s", o.summary(&res))
	if sampleErr != nil {
		return res, fmt.Errorf("overload: sampling the server's RSS: %w", sampleErr)
	}
	return res, nil
}

// collect fills res from the segments (baseline, overload, recovery), the RSS samples and
// the two explicit ones; zero is the overload's start (ns since the tracker's base).
func (o *overloadRun) collect(res *OverloadResult, segs []*segment, zero int64, samples []timedRSS, before, after int64) {
	tr := o.s.tr
	for i, sg := range segs {
		ph := o.phase(sg)
		ph.Name = OverloadPhaseNames[i]
		ph.RSSPeak = peakBetween(samples, sg.begin, sg.begin+int64(sg.spec.dur), tr.base)
		res.Phases = append(res.Phases, ph)
	}
	res.Threshold = res.Phases[0].P99
	if o.cfg.MaxP99 > 0 {
		res.Threshold = o.cfg.MaxP99
	}
	overloadEnd := zero + int64(o.cfg.Overload)
	var hs []hist.Histogram
	res.Windows, hs = o.windows(segs[1:], overloadEnd, res.Threshold)
	res.RecoveredIn, res.Recovered = RecoveryTime(res.Windows)
	res.FirstOK, res.FirstOKFound = firstOK(res.Windows)
	res.BaselineWindows, _ = o.windows(segs[:1], segs[0].begin, res.Threshold)
	res.Span = o.cfg.span()
	res.Spans = spans(res.Windows, hs, int(res.Span/o.cfg.window()), res.Threshold)
	res.SpanRecoveredIn, res.SpanRecovered = RecoveryTime(res.Spans)
	res.RSSBefore, res.RSSAfter = before, after
	res.RSSPeak = before
	recoveryEnd := overloadEnd + int64(o.cfg.Recovery)
	for _, x := range samples {
		at := x.at.Sub(tr.base) - time.Duration(zero)
		if at < 0 {
			continue
		}
		res.RSS = append(res.RSS, RSSSample{At: at, RSS: x.rss})
		if x.rss > res.RSSPeak {
			res.RSSPeak, res.RSSPeakAt = x.rss, at
		}
		if int64(x.at.Sub(tr.base)) <= recoveryEnd {
			res.RSSRecoveryEnd = x.rss
		}
	}
	if after > res.RSSPeak {
		res.RSSPeak, res.RSSPeakAt = after, time.Duration(tr.now()-zero)
	}
}

// phase counts one segment's messages by their seq: every figure is final (the drain is
// over and the tracker's phase closed).
func (o *overloadRun) phase(sg *segment) OverloadPhase {
	tr := o.s.tr
	p := &tr.phases[sg.k]
	ph := OverloadPhase{
		Rate: sg.spec.rate, Duration: sg.spec.dur, Offered: sg.offered,
		Sent: sg.sent.Load(), Unsent: sg.unsent.Load(), WriteErrs: sg.writeErrs.Load(),
		LagP99: sg.lag.Percentile(0.99), LagMax: sg.lag.Max(),
		Dups: p.dups.Load(), Acks: p.acks.Load(), AckErrors: map[int]int64{},
	}
	took := max(sg.spec.dur, time.Duration(sg.lastWrite.Load()-sg.begin))
	ph.Achieved = float64(ph.Sent) / took.Seconds()
	var errs int64
	p.errs.Range(func(code, n any) bool {
		ph.AckErrors[code.(int)] = n.(*atomic.Int64).Load()
		errs += ph.AckErrors[code.(int)]
		return true
	})
	ph.NoReply = max(ph.Sent-ph.Acks-errs, 0)
	var replies hist.Histogram
	for seq := tr.start[sg.k]; seq < tr.start[sg.k]+sg.offered; seq++ {
		sent := tr.sentAt[seq].Load()
		if r := o.repliedAt[seq].Load(); sent > 0 && r > 0 {
			replies.Record(time.Duration(r - sent))
		}
	}
	// Delivered by the end of the drain, late or not; refused and unanswered together.
	out := tr.outcome(sg.k, sg.offered, ph.Sent)
	ph.Delivered, ph.LostAcked, ph.LostUnacked = out.Delivered+out.Late, out.AckedLost, out.Unacked()
	ph.P50, ph.P99, ph.Max = p.hist.Percentile(0.50), p.hist.Percentile(0.99), p.hist.Max()
	ph.ReplyP50, ph.ReplyP99 = replies.Percentile(0.50), replies.Percentile(0.99)
	return ph
}

// windows buckets the messages of segs (the overload, then the recovery; or the
// baseline) by write time into windows aligned on overloadEnd (ns since the tracker's
// base; the baseline's start for the baseline), from the first segment's start to the
// last one's end; a message written after that (late, within sendWindow) counts in the
// last window. It returns the windows' latency histograms beside them (for spans).
func (o *overloadRun) windows(segs []*segment, overloadEnd int64, threshold time.Duration) ([]OverloadWindow, []hist.Histogram) {
	tr := o.s.tr
	width := int64(o.cfg.window())
	before := (overloadEnd - segs[0].begin + width - 1) / width // windows of the overload
	last := segs[len(segs)-1]
	after := (last.begin + int64(last.spec.dur) - overloadEnd + width - 1) / width
	origin := overloadEnd - before*width
	n := int(before + after)
	hs := make([]hist.Histogram, n)
	out := make([]OverloadWindow, n)
	for i := range out {
		out[i].Start = time.Duration((int64(i) - before) * width)
	}
	for _, sg := range segs {
		for seq := tr.start[sg.k]; seq < tr.start[sg.k]+sg.offered; seq++ {
			sent := tr.sentAt[seq].Load()
			if sent == 0 {
				continue // never written
			}
			i := min(max(int((sent-origin)/width), 0), n-1)
			out[i].Sent++
			if d := o.deliveredAt[seq].Load(); d > 0 && tr.got[seq].Load() {
				out[i].Delivered++
				hs[i].Record(time.Duration(d - sent))
			}
		}
	}
	for i := range out {
		out[i].judge(&hs[i], threshold)
	}
	return out, hs
}

// judge fills in w's latencies from h, the histogram of its delivered messages, and
// whether it is good: every message sent was delivered and its p99 is at most threshold.
// Windows and spans are judged by this one rule.
func (w *OverloadWindow) judge(h *hist.Histogram, threshold time.Duration) {
	w.P50, w.P99, w.Max = h.Percentile(0.50), h.Percentile(0.99), h.Max()
	w.OK = w.Sent > 0 && w.Delivered == w.Sent && w.P99 <= threshold
}

// spans judges the windows from the overload's end on (Start ≥ 0) in spans of n windows
// each, one starting at each window with n windows left: a span's messages are the sum of
// its windows', its latencies their histograms added. n < 1 counts as 1.
func spans(windows []OverloadWindow, hs []hist.Histogram, n int, threshold time.Duration) []OverloadWindow {
	n = max(n, 1)
	var out []OverloadWindow
	for i := range windows {
		if windows[i].Start < 0 || i+n > len(windows) {
			continue
		}
		var h hist.Histogram
		sp := OverloadWindow{Start: windows[i].Start}
		for j := i; j < i+n; j++ {
			sp.Sent += windows[j].Sent
			sp.Delivered += windows[j].Delivered
			h.Add(&hs[j])
		}
		sp.judge(&h, threshold)
		out = append(out, sp)
	}
	return out
}

// RecoveryTime returns the Start of the first window at or after the overload's end
// (Start ≥ 0) from which every window is OK, and whether there is one (the last window
// must be OK).
func RecoveryTime(windows []OverloadWindow) (time.Duration, bool) {
	at, found := time.Duration(0), false
	for _, w := range windows {
		switch {
		case w.Start < 0:
		case !w.OK:
			found = false
		case !found:
			at, found = w.Start, true
		}
	}
	if !found {
		return 0, false
	}
	return at, true
}

// firstOK returns the Start of the first OK window at or after the overload's end.
func firstOK(windows []OverloadWindow) (time.Duration, bool) {
	for _, w := range windows {
		if w.Start >= 0 && w.OK {
			return w.Start, true
		}
	}
	return 0, false
}

func (o *overloadRun) summary(r *OverloadResult) string {
	rec := fmt.Sprintf("not recovered (%v spans)", r.Span)
	if r.SpanRecovered {
		rec = fmt.Sprintf("recovered in %v (%v spans)", r.SpanRecoveredIn, r.Span)
	}
	if r.Recovered {
		rec += fmt.Sprintf(", per %v window in %v", o.cfg.window(), r.RecoveredIn)
	} else {
		rec += fmt.Sprintf(", per %v window not", o.cfg.window())
	}
	ov := r.Phases[1]
	return fmt.Sprintf("overload achieved %.0f of %d msg/s (%d unsent, write lag p99 %v), p99 %v, %d acks, errors %v, lost %d acked / %d unacked; %s (threshold p99 %v); RSS before %.0f MiB, peak %.0f MiB at %v, after %.0f MiB",
		ov.Achieved, ov.Rate, ov.Unsent, ov.LagP99, ov.P99, ov.Acks, ov.AckErrors, r.LostAcked(), ov.LostUnacked, rec, r.Threshold,
		mib(r.RSSBefore), mib(r.RSSPeak), r.RSSPeakAt.Round(time.Second), mib(r.RSSAfter))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// segment is one phase of a back-to-back run as its writers see it.
type segment struct {
	k       int // the tracker's phase
	spec    phaseSpec
	offered int64
	begin   int64 // scheduled start, ns since the tracker's base
	// deadline: a message still unwritten then is given up (sendWindow after the end).
	deadline  time.Time
	lastWrite atomic.Int64 // ns since the tracker's base
	lag       hist.Histogram

	sent, unsent, writeErrs atomic.Int64
}

// timedJob is one message to write: its seq, pair, segment and when it was due (ns
// since the tracker's base).
type timedJob struct {
	seq  int64
	pair int
	seg  *segment
	due  int64
}

// backToBackRun is what backToBack returns: the segments and the drain.
type backToBackRun struct {
	segs  []*segment
	drain time.Duration
}

// backToBack offers specs one after the other by the clock (phase i+1 starts when phase
// i's time is up, whatever its writers still hold) on the tracker's phases ks, then waits
// until every message and reply has arrived, at most Drain after the last write, and
// closes the phases. Unlike runPhase it does not pause between the phases.
func (o *overloadRun) backToBack(ctx context.Context, ks []int, specs []phaseSpec) (*backToBackRun, error) {
	tr := o.s.tr
	run := &backToBackRun{}
	at := tr.now()
	for i, spec := range specs {
		end := at + int64(spec.dur)
		run.segs = append(run.segs, &segment{
			k: ks[i], spec: spec, offered: sched.Due(float64(spec.rate), spec.dur), begin: at,
			deadline: tr.base.Add(time.Duration(end) + sendWindow),
		})
		at = end
	}
	workers := max(o.cfg.Workers, 1)
	queues := make([]chan timedJob, workers)
	var wg sync.WaitGroup
	for w := range queues {
		queues[w] = make(chan timedJob, 4096)
		wg.Go(func() { o.write(queues[w]) })
	}
	err := o.schedule(ctx, run.segs, queues)
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if err != nil {
		return run, err
	}
	if err := o.drain(ctx, run.segs); err != nil {
		return run, err
	}
	var lastWrite int64
	for _, sg := range run.segs {
		lastWrite = max(lastWrite, sg.lastWrite.Load())
		tr.close(sg.k)
	}
	run.drain = max(time.Duration(tr.now()-lastWrite), 0)
	return run, nil
}

// schedule hands every segment's messages to the writers when they are due (pair i to
// queue i mod workers, so a connection is written in order by one goroutine); a full
// queue holds it up, and the next due messages catch up at once.
func (o *overloadRun) schedule(ctx context.Context, segs []*segment, queues []chan timedJob) error {
	tr := o.s.tr
	pairs := int64(len(o.s.pairs))
	ticker := time.NewTicker(time.Millisecond)
	defer ticker.Stop()
	for _, sg := range segs {
		pacer, err := sched.NewPacer(float64(sg.spec.rate), sg.spec.dur)
		if err != nil {
			return fmt.Errorf("overload phase %d msg/s: %w", sg.spec.rate, err)
		}
		first := tr.start[sg.k]
		seq := first
		for !pacer.Done() {
			for n := pacer.Step(time.Duration(tr.now() - sg.begin)); n > 0; n-- {
				// Message i (from 0) is due once rate × elapsed reaches i + 1.
				due := sg.begin + int64(math.Ceil(float64(seq-first+1)*1e9/float64(sg.spec.rate)))
				pair := int(seq % pairs)
				select {
				case queues[pair%len(queues)] <- timedJob{seq: seq, pair: pair, seg: sg, due: due}:
				case <-ctx.Done():
					return ctx.Err()
				}
				seq++
			}
			if pacer.Done() {
				break
			}
			select {
			case <-ticker.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// write is one writer: it writes each job on its pair's sender, or gives it up when its
// segment's deadline has passed.
func (o *overloadRun) write(q <-chan timedJob) {
	tr := o.s.tr
	buf := make([]byte, 0, 256)
	for j := range q {
		sg := j.seg
		if time.Now().After(sg.deadline) {
			sg.unsent.Add(1)
			continue
		}
		buf = appendMessage(buf[:0], j.seq, o.s.pairs[j.pair][1].ID)
		now := tr.now()
		tr.sentAt[j.seq].Store(now)
		sg.lag.Record(time.Duration(now - j.due))
		if err := o.s.senders[j.pair].Write(buf); err != nil {
			tr.sentAt[j.seq].Store(0) // not written: no window counts it
			sg.writeErrs.Add(1)
			continue
		}
		sg.sent.Add(1)
		tr.written.Add(1)
		storeMax(&sg.lastWrite, tr.now())
	}
}

// drain waits until every segment's written messages have arrived and been answered, at
// most Drain from now.
func (o *overloadRun) drain(ctx context.Context, segs []*segment) error {
	tr := o.s.tr
	end := time.Now().Add(o.cfg.Drain)
	for time.Now().Before(end) {
		done := true
		for _, sg := range segs {
			n := sg.sent.Load()
			if tr.delivered(sg.k) < n || tr.phases[sg.k].replies.Load() < n {
				done = false
				break
			}
		}
		if done {
			return nil
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func storeMax(v *atomic.Int64, x int64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}

// timedRSS is one sample of the server's RSS.
type timedRSS struct {
	at  time.Time
	rss int64
}

// rssSampler reads the target's RSS every interval in its own goroutine until stopped.
type rssSampler struct {
	done    chan struct{}
	wg      sync.WaitGroup
	samples []timedRSS
	err     error
}

func startRSSSampler(t *Target, every time.Duration) *rssSampler {
	s := &rssSampler{done: make(chan struct{})}
	s.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			srv, err := procfs.Read(t.PIDs)
			if err != nil {
				s.err = fmt.Errorf("%s: %w", t.Name, err)
				return
			}
			s.samples = append(s.samples, timedRSS{at: time.Now(), rss: srv.RSS})
			select {
			case <-tick.C:
			case <-s.done:
				return
			}
		}
	})
	return s
}

// stop ends the sampling and returns the samples and the error that ended it early, if any.
func (s *rssSampler) stop() ([]timedRSS, error) {
	close(s.done)
	s.wg.Wait()
	return s.samples, s.err
}

// peakBetween returns the highest sample taken in [from, to) (ns since base), or 0.
func peakBetween(samples []timedRSS, from, to int64, base time.Time) int64 {
	var peak int64
	for _, x := range samples {
		if at := int64(x.at.Sub(base)); at >= from && at < to {
			peak = max(peak, x.rss)
		}
	}
	return peak
}
