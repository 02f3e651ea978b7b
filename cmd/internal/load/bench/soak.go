package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla/charla/cmd/internal/load/client"
	"github.com/charla/charla/cmd/internal/load/hist"
	"github.com/charla/charla/cmd/internal/load/soak"
	"github.com/charla/charla/cmd/internal/load/wire"
)

// SoakConfig sets the soak mode: chat pairs at a fixed total rate for a long time, with
// recipients dropping their connection and resuming (protocol §8.3) all along, while every
// watched process is sampled.
type SoakConfig struct {
	// Pairs, Rate and Duration: sender→recipient pairs, the total rate in messages per
	// second and how long it is offered.
	Pairs    int
	Rate     int
	Duration time.Duration
	// Grace is how long after the last write a message may still arrive.
	Grace time.Duration
	// Workers write for the scheduler, as in the chat mode.
	Workers int
	// Churn is how many recipients per second (round robin) close their connection and
	// reconnect with resume=<the highest seq they saw>, on the next edge; 0: none. Every
	// other one closes politely (1000), the rest drop the TCP connection.
	Churn float64
	// Offline is the mean time a churned recipient stays away: uniform in [0, 2×Offline].
	Offline time.Duration
	// Interval is the time between samples of the processes; FlatAfter the warm-up left
	// out of the verdict; Bounds what the verdict allows.
	Interval  time.Duration
	FlatAfter time.Duration
	Bounds    soak.Bounds
	// Procs are the watched processes.
	Procs []soak.Proc
	// Rest, when > 0, is how long the connections stay open and idle after the drain
	// before a last sample (SoakResult.Rest), to compare with the one before the load.
	Rest time.Duration
}

// churnInFlight bounds the reconnections under way at once; a churn tick finding them all
// busy is skipped (and counted).
const churnInFlight = 64

// churnStopsBefore is how long before the end the last reconnection may start, beyond
// the longest time away, so every recipient is back before the drain: 5 s, or a quarter
// of a shorter run.
func churnStopsBefore(d time.Duration) time.Duration { return min(5*time.Second, d/4) }

// SoakTraffic is the message flow up to one sample (counts since the load began) and the
// latency of the live deliveries since the previous sample.
type SoakTraffic struct {
	Sent, Acked, Delivered, Replayed, Dups int64
	Reconnects                             int64 // resumes done (CONNECTED read)
	Window                                 uint64
	P50, P99                               time.Duration
}

// SoakRow is one sample: when (since the load began), the traffic, and every process in
// the order of SoakConfig.Procs.
type SoakRow struct {
	At      time.Duration
	Traffic SoakTraffic
	Samples []soak.Sample
}

// SoakResult is the soak's figures.
type SoakResult struct {
	Config    SoakConfig
	Provision time.Duration
	// Warmup and WarmupLost: messages of the warm-up rounds, as in the chat mode.
	Warmup, WarmupLost int64
	// Phase is the whole soak as one chat phase; its latencies are those of the live
	// deliveries, the replayed ones are apart.
	Phase ChatPhase
	// Outcome is what became of every message written, counted once the load is over
	// (after the rest, if any): delivered within the grace, late, acknowledged and lost
	// (what the verdict judges), refused, unanswered.
	Outcome                         Outcome
	Replayed                        int64
	ReplayP50, ReplayP99, ReplayMax time.Duration
	// Reconnects are the recipients' reconnections begun by the churn; ResumeOK and
	// ResumeFailed what CONNECTED answered to every resume (the churn's and the mends');
	// ReconnectErrors the reconnections that never got back (every attempt failed);
	// DialFailures the failed attempts among all; ChurnSkipped the ticks that found the
	// recipient busy or every reconnection slot taken.
	Reconnects, ResumeOK, ResumeFailed, ReconnectErrors, DialFailures, ChurnSkipped int64
	// Mends are the connections the server closed (or that broke) and the tool reopened
	// at once, as a client does (recipients with resume); ServerCloses counts them by side,
	// close code and reason ("recipient 1011 events unavailable: reconnect"); Closed is
	// how many connections were closed at the end of the load.
	Mends        int64
	ServerCloses map[string]int64
	Closed       int
	// SeqGaps counts events a recipient never saw (a seq skipped, across reconnections
	// too), SeqRepeats events seen again (a seq not above the last one), SkippedByFailed
	// the events a failed resume skipped (as the protocol allows; the client would refetch).
	SeqGaps, SeqRepeats, SkippedByFailed int64
	// Rows are the samples, every Interval from the start of the load to its end; the
	// first is taken at rest (the connections open, the warm-up over).
	Rows []SoakRow
	// Rest is the sample at rest after the load: Config.Rest after the drain, the
	// connections still open. Goroutines and open files should be back to Rows[0]'s.
	Rest *SoakRow
	// Checks are the verdicts per process (the order of Config.Procs).
	Checks [][]soak.Check
}

// Flat reports whether every server process is flat.
func (r *SoakResult) Flat() bool {
	for i, p := range r.Config.Procs {
		if p.Role == soak.Server && (i >= len(r.Checks) || !soak.Flat(r.Checks[i])) {
			return false
		}
	}
	return true
}

// Sides of a pair.
const (
	senderSide    = 0
	recipientSide = 1
)

var sideNames = [2]string{"sender", "recipient"}

// soakSlot is one connection of a pair across its reconnections.
type soakSlot struct {
	conn     atomic.Pointer[client.Conn] // nil while away
	last     atomic.Int64                // recipients: the highest seq the user's connections saw
	replayTo atomic.Int64                // recipients: on the current connection, events up to this seq are replays
	busy     atomic.Bool                 // a reconnection is under way
	moves    int                         // reconnections so far (picks the next edge); owned by the reconnection under way
}

// soakRun is one soak's shared state.
type soakRun struct {
	cfg   SoakConfig
	opts  *Options
	t     *Target
	s     *chatSession
	slots [2][]soakSlot // by side, by pair

	reconnects, resumeOK, resumeFailed, reconnectErrs, dialFailures, churnSkipped, mends atomic.Int64
	gaps, repeats, skipped                                                               atomic.Int64

	mu     sync.Mutex
	closes map[string]int64
}

// settle sets res's Phase to ph, the soak's phase, and sorts its messages once the load
// is over: the deliveries since the grace ended count as late, and every message written
// as delivered, late, lost acked, refused or unanswered (Outcome, as the overload does).
func (r *soakRun) settle(res *SoakResult, ph ChatPhase) {
	res.Outcome = r.s.tr.outcome(warmups, ph.Offered, ph.Sent)
	ph.Late = res.Outcome.Late
	res.Phase = ph
}

// sender returns pair i's sender connection, for runPhase (a closed one while away, so
// the write fails and counts as such).
func (r *soakRun) sender(i int) *client.Conn {
	if c := r.slots[senderSide][i].conn.Load(); c != nil {
		return c
	}
	return r.s.senders[i]
}

// recipient returns the frame handler of recipient i's connections: it follows the seqs
// (gaps, repeats), tells replays from live events after CONNECTED and hands every
// NEW_CHAT_MESSAGE to the tracker.
func (r *soakRun) recipient(tr *tracker, i int) client.Handler {
	sl := &r.slots[recipientSide][i]
	return func(_ *client.Conn, f wire.Frame) {
		if string(f.Type) == wire.TypeConnected {
			last := wire.ParseUint(wire.Field(f.Payload, "lastSeq"))
			switch string(wire.Field(f.Payload, "resume")) {
			case "ok":
				r.resumeOK.Add(1)
				sl.replayTo.Store(last)
			case "failed":
				r.resumeFailed.Add(1)
				r.skipped.Add(max(last-sl.last.Load(), 0))
				sl.last.Store(last)
				sl.replayTo.Store(0)
			default: // the first connection: live events follow from lastSeq + 1
				sl.last.Store(last)
				sl.replayTo.Store(0)
			}
			return
		}
		if f.Seq > 0 {
			switch prev := sl.last.Load(); {
			case f.Seq <= prev:
				r.repeats.Add(1)
			case f.Seq > prev+1:
				r.gaps.Add(f.Seq - prev - 1)
				sl.last.Store(f.Seq)
			default:
				sl.last.Store(f.Seq)
			}
		}
		if string(f.Type) == wire.TypeNewMsg {
			tr.onMessage(f, f.Seq > 0 && f.Seq <= sl.replayTo.Load())
		}
	}
}

// RunSoak provisions and connects the pairs, warms up, then offers Rate for Duration while
// recipients churn and every process is sampled each Interval, and judges the series.
func RunSoak(ctx context.Context, opts *Options, t *Target, cfg SoakConfig) (SoakResult, error) {
	res := SoakResult{Config: cfg}
	switch {
	case cfg.Pairs < 1 || cfg.Rate < 1 || cfg.Duration <= 0:
		return res, fmt.Errorf("soak: want at least one pair, a rate and a duration, got %d pairs, %d msg/s, %v", cfg.Pairs, cfg.Rate, cfg.Duration)
	case cfg.Interval <= 0:
		return res, fmt.Errorf("soak: sampling interval %v: want > 0", cfg.Interval)
	case cfg.Churn < 0 || cfg.Offline < 0:
		return res, errors.New("soak: churn and offline time must not be negative")
	}
	r := &soakRun{cfg: cfg, opts: opts, t: t, closes: map[string]int64{}}
	r.slots = [2][]soakSlot{make([]soakSlot, cfg.Pairs), make([]soakSlot, cfg.Pairs)}
	spec := phaseSpec{rate: cfg.Rate, dur: cfg.Duration}
	ccfg := ChatConfig{Grace: cfg.Grace, Workers: cfg.Workers}
	s, err := openChat(ctx, opts, t, cfg.Pairs, []phaseSpec{spec}, ccfg, r.recipient)
	if err != nil {
		return res, err
	}
	r.s = s
	defer s.close()
	res.Provision, res.Warmup, res.WarmupLost = s.provision, s.warmup, s.warmupLost
	if !s.con.waitFirst {
		return res, fmt.Errorf("%s: the server sent no CONNECTED within %v: the soak needs protocol v2 (resume)", t.Name, firstFrameWait)
	}
	// From here the slots own the connections; s's slices get the last ones back for
	// closing once every goroutine is done.
	for i := range cfg.Pairs {
		r.slots[senderSide][i].conn.Store(s.senders[i])
		r.slots[recipientSide][i].conn.Store(s.recipients[i])
	}

	bg, stop := context.WithCancel(ctx)
	begin := time.Now()
	var wg sync.WaitGroup
	// The sampler stops by itself after its row at Duration (runPhase lasts at least that
	// long), or early when ctx ends or the load fails.
	failed := make(chan struct{})
	wg.Go(func() { res.Rows = r.sample(ctx, failed, begin) })
	wg.Go(func() { r.mend(bg) })
	if cfg.Churn > 0 {
		last := begin.Add(cfg.Duration - 2*cfg.Offline - churnStopsBefore(cfg.Duration))
		wg.Go(func() { r.churn(bg, last) })
	}
	opts.logf(t, "soak: %d msg/s for %v over %d pairs, %.1f reconnections/s, sampling %d processes every %v", cfg.Rate, cfg.Duration, cfg.Pairs, cfg.Churn, len(cfg.Procs), cfg.Interval)
	ph, err := runPhase(ctx, t, s.tr, warmups, spec, ccfg, s.pairs, r.sender)
	if err != nil {
		close(failed)
	}
	stop()
	wg.Wait()
	for i := range cfg.Pairs {
		for side, dst := range [2][]*client.Conn{s.senders, s.recipients} {
			if c := r.slots[side][i].conn.Load(); c != nil && c != dst[i] {
				dst[i].Close(false) // closed already; waits for its reader
				dst[i] = c
			}
		}
	}
	if err != nil {
		// Stopped early: the samples so far and their verdict still tell something.
		res.Checks = Judge(res.Rows, cfg)
		return res, err
	}
	if cfg.Rest > 0 && sleep(ctx, cfg.Rest) == nil {
		hc := &http.Client{Timeout: 10 * time.Second}
		res.Rest = &SoakRow{At: time.Since(begin), Traffic: r.traffic(), Samples: soak.ReadAll(ctx, hc, cfg.Procs)}
		hc.CloseIdleConnections()
	}
	ph.Dropped = dropped(s.senders) + dropped(s.recipients)
	res.Closed = ph.Dropped
	r.settle(&res, ph)
	res.Replayed = s.tr.replayed.Load()
	h := &s.tr.replayHist
	res.ReplayP50, res.ReplayP99, res.ReplayMax = h.Percentile(0.50), h.Percentile(0.99), h.Max()
	res.Reconnects, res.ResumeOK, res.ResumeFailed = r.reconnects.Load(), r.resumeOK.Load(), r.resumeFailed.Load()
	res.ReconnectErrors, res.DialFailures, res.ChurnSkipped = r.reconnectErrs.Load(), r.dialFailures.Load(), r.churnSkipped.Load()
	res.Mends, res.ServerCloses = r.mends.Load(), r.closes
	res.SeqGaps, res.SeqRepeats, res.SkippedByFailed = r.gaps.Load(), r.repeats.Load(), r.skipped.Load()
	res.Checks = Judge(res.Rows, cfg)
	opts.logf(t, "soak done: %s", soakSummary(&res))
	return res, nil
}

// soakSummary is the log line of a soak's end: the messages by what became of them, the
// reconnections and the seqs.
func soakSummary(r *SoakResult) string {
	ph, o := r.Phase, r.Outcome
	return fmt.Sprintf("sent %d, delivered %d (%d replayed), late %d, lost acked %d, refused %d, unanswered %d, duplicates %d, %d reconnections (%d resumed, %d failed), %d mended after %v, seq gaps %d, repeats %d, p50 %v p99 %v",
		ph.Sent, o.Delivered, r.Replayed, o.Late, o.AckedLost, o.Refused, o.Unanswered, ph.Dups, r.Reconnects, r.ResumeOK, r.ResumeFailed, r.Mends, r.ServerCloses, r.SeqGaps, r.SeqRepeats, ph.P50, ph.P99)
}

// Judge returns the verdict of every process of cfg on rows.
func Judge(rows []SoakRow, cfg SoakConfig) [][]soak.Check {
	at := make([]time.Duration, len(rows))
	for i, row := range rows {
		at[i] = row.At
	}
	out := make([][]soak.Check, len(cfg.Procs))
	for j := range cfg.Procs {
		series := make([]soak.Sample, len(rows))
		for i, row := range rows {
			series[i] = row.Samples[j]
		}
		out[j] = soak.Judge(at, series, cfg.FlatAfter, cfg.Bounds)
	}
	return out
}

// sample takes a row at the start of the load and every Interval after, the last at
// Duration, and returns them after that one, or early once ctx ends or failed is closed.
func (r *soakRun) sample(ctx context.Context, failed <-chan struct{}, begin time.Time) []SoakRow {
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	var rows []SoakRow
	for k := 0; ; k++ {
		at := min(time.Duration(k)*r.cfg.Interval, r.cfg.Duration) // the loop ends at Duration
		select {
		case <-time.After(time.Until(begin.Add(at))):
		case <-ctx.Done():
			return rows
		case <-failed:
			return rows
		}
		rows = append(rows, SoakRow{At: time.Since(begin), Traffic: r.traffic(), Samples: soak.ReadAll(ctx, hc, r.cfg.Procs)})
		last := rows[len(rows)-1]
		ps := make([]any, 0, 3*len(r.cfg.Procs))
		for i, p := range r.cfg.Procs {
			ps = append(ps, p.Name, float64(last.Samples[i].RSS)/(1<<20), last.Samples[i].Goroutines)
		}
		r.opts.logf(r.t, "soak %v: sent %d delivered %d (replayed %d) dups %d, %d reconnections, window p99 %v; "+procsFormat(len(r.cfg.Procs)),
			append([]any{last.At.Round(time.Second), last.Traffic.Sent, last.Traffic.Delivered, last.Traffic.Replayed, last.Traffic.Dups, last.Traffic.Reconnects, last.Traffic.P99}, ps...)...)
		if at == r.cfg.Duration {
			return rows
		}
	}
}

func procsFormat(n int) string {
	f := ""
	for i := range n {
		if i > 0 {
			f += ", "
		}
		f += "%s %.0f MiB %d g"
	}
	return f
}

// traffic reads the counts so far and starts a new latency window.
func (r *soakRun) traffic() SoakTraffic {
	tr := r.s.tr
	p := &tr.phases[warmups]
	w := tr.window.Swap(new(hist.Histogram))
	t := SoakTraffic{
		Sent: tr.written.Load(), Acked: p.acks.Load(), Delivered: tr.delivered(warmups),
		Replayed: tr.replayed.Load(), Dups: p.dups.Load(), Reconnects: r.resumeOK.Load() + r.resumeFailed.Load(),
	}
	t.Sent -= r.s.warmup // written counts the warm-up rounds' messages too
	if w != nil {
		t.Window, t.P50, t.P99 = w.Count(), w.Percentile(0.50), w.Percentile(0.99)
	}
	return t
}

// churn reconnects recipients round robin, Churn per second, until last (or ctx ends), and
// waits for the reconnections under way.
func (r *soakRun) churn(ctx context.Context, last time.Time) {
	var wg sync.WaitGroup
	defer wg.Wait()
	inFlight := make(chan struct{}, churnInFlight)
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.Churn))
	defer tick.Stop()
	for next := 0; ; next++ {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		if time.Now().After(last) {
			return
		}
		i := next % r.cfg.Pairs
		sl := &r.slots[recipientSide][i]
		if !sl.busy.CompareAndSwap(false, true) {
			r.churnSkipped.Add(1)
			continue
		}
		select {
		case inFlight <- struct{}{}:
		default:
			sl.busy.Store(false)
			r.churnSkipped.Add(1)
			continue
		}
		r.reconnects.Add(1)
		wg.Go(func() {
			defer func() { <-inFlight; sl.busy.Store(false) }()
			r.reconnect(ctx, recipientSide, i, true)
		})
	}
}

// mendEvery is how often the mender looks for connections the server closed.
const mendEvery = time.Second

// mend reopens, once a second, every connection whose reader has ended while no
// reconnection of it was under way: the server closed it (1011 "events unavailable:
// reconnect and resume", a slow consumer's 1008, ...), as a client would at once. It waits
// for the reopenings under way when ctx ends.
func (r *soakRun) mend(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(mendEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		for side := range r.slots {
			for i := range r.slots[side] {
				sl := &r.slots[side][i]
				if c := sl.conn.Load(); c == nil || c.Err() == nil || !sl.busy.CompareAndSwap(false, true) {
					continue
				}
				r.mends.Add(1)
				wg.Go(func() {
					defer sl.busy.Store(false)
					r.reconnect(ctx, side, i, false)
				})
			}
		}
	}
}

// reconnect closes connection i of side (the churn's choice) or finds it closed (the
// server's, recorded by close code), stays away a while when churned, and reconnects on
// the next edge; a recipient asks resume=<the highest seq it saw>.
func (r *soakRun) reconnect(ctx context.Context, side, i int, churned bool) {
	sl := &r.slots[side][i]
	if old := sl.conn.Load(); old != nil {
		if err := old.Err(); err != nil {
			code, reason := client.CloseCode(err)
			key := fmt.Sprintf("%s %d %s", sideNames[side], code, reason)
			if code == 0 {
				key = sideNames[side] + " broken (" + err.Error() + ")"
			}
			r.mu.Lock()
			r.closes[key]++
			r.mu.Unlock()
		}
		old.Close(r.reconnects.Load()%2 == 0) // waits for its reader: sl.last is final
	}
	if churned && r.cfg.Offline > 0 {
		if sleep(ctx, rand.N(2*r.cfg.Offline+1)) != nil {
			return
		}
	}
	sl.moves++
	u := r.s.pairs[i][side]
	url := r.t.URL(i+side+sl.moves, u.Token)
	h := client.Handler(r.s.tr.onSender)
	if side == recipientSide {
		url += "&resume=" + strconv.FormatInt(sl.last.Load(), 10)
		h = r.recipient(r.s.tr, i)
	}
	c, failures, err := r.s.con.dialURL(ctx, i, url, h)
	r.dialFailures.Add(int64(failures))
	if err != nil {
		if ctx.Err() == nil {
			r.reconnectErrs.Add(1)
			r.opts.logf(r.t, "soak: %s %d did not get back: %v", sideNames[side], i, err)
		}
		return
	}
	sl.conn.Store(c)
}
