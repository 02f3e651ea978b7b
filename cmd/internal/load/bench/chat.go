package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla/charla/cmd/internal/load/client"
	"github.com/charla/charla/cmd/internal/load/hist"
	"github.com/charla/charla/cmd/internal/load/procfs"
	"github.com/charla/charla/cmd/internal/load/provision"
	"github.com/charla/charla/cmd/internal/load/sched"
	"github.com/charla/charla/cmd/internal/load/wire"
)

// ChatConfig sets the chat mode.
type ChatConfig struct {
	// Pairs is the number of sender→recipient pairs; the total rate is spread over them.
	Pairs int
	// Rates are the total rates of the phases, in messages per second.
	Rates []int
	// Phase is how long each rate is offered.
	Phase time.Duration
	// Grace is how long after a phase's last write a message may still arrive; later
	// ones count as lost.
	Grace time.Duration
	// Workers is how many goroutines write for the scheduler (each owns a share of the
	// pairs, so a connection is written by one goroutine in order).
	Workers int
	// SoakRate and Soak, when both set, add a last, longer phase (the result's Soak).
	SoakRate int
	Soak     time.Duration
	// SoakSettle bounds a wait after the soak, before its messages are sorted (Outcome):
	// until each is answered and delivered, so that one delivered late is told from one
	// never answered. Zero: no wait, the soak's grace only.
	SoakSettle time.Duration
}

type phaseSpec struct {
	rate  int
	dur   time.Duration
	grace time.Duration // 0: the config's Grace
}

// Warm-up: before the measured phases every pair sends one message and the run waits
// until all arrive, so the server has finished setting up its routes (presence) for the
// new connections; up to warmups rounds, each waiting at most warmupGrace.
const (
	warmups     = 3
	warmupGrace = 15 * time.Second
)

func (c ChatConfig) specs() []phaseSpec {
	var s []phaseSpec
	for _, r := range c.Rates {
		s = append(s, phaseSpec{rate: r, dur: c.Phase})
	}
	if c.SoakRate > 0 && c.Soak > 0 {
		s = append(s, phaseSpec{rate: c.SoakRate, dur: c.Soak})
	}
	return s
}

// ChatPhase is the figure of one rate.
type ChatPhase struct {
	Rate               int
	Duration           time.Duration // how long the rate was offered
	Offered            int64         // messages the schedule held
	Sent               int64         // messages written
	Unsent             int64         // due but not written before the phase's window closed
	SendTook           time.Duration // from the phase's start to its last write (at least Phase)
	Drain              time.Duration // from then until every message and reply arrived (or the grace ended)
	Achieved           float64       // Sent / SendTook, messages per second
	Delivered          int64         // NEW_CHAT_MESSAGE read by the recipient within the grace
	Lost               int64         // Sent − Delivered
	Late               int64         // delivered after the grace (counted lost)
	Outcome            Outcome       // every message written by what became of it, by the end of the run
	Dups               int64         // delivered more than once
	Acks               int64         // SERVER_ACK read by senders
	AckErrors          map[int]int64 // ERROR_NOTIFICATION replies by code
	WriteErrs          int64         // writes that failed (connection gone)
	Dropped            int           // connections (senders and recipients) closed by the end of the phase
	P50, P90, P99, Max time.Duration
	CPU, DBCPU         time.Duration // server and database CPU over the phase and its drain
	ClientCPU          time.Duration // the load tool's own CPU over the same span
}

// Per1000 returns CPU seconds per 1,000 messages sent.
func Per1000(cpu time.Duration, sent int64) float64 {
	if sent == 0 {
		return 0
	}
	return cpu.Seconds() / float64(sent) * 1000
}

// ChatResult holds every phase.
type ChatResult struct {
	Pairs     int
	Provision time.Duration
	Phases    []ChatPhase
	Soak      *ChatPhase // the soak phase, when configured
	// Warmup is how many warm-up messages were sent before the measured phases, and
	// WarmupLost how many of them did not arrive in the last warm-up round.
	Warmup, WarmupLost int64
}

// tracker matches deliveries to sends. Sequence numbers are planned ahead: phase k owns
// [start[k], start[k]+total[k]).
type tracker struct {
	base    time.Time
	sentAt  []atomic.Int64 // monotonic ns since base, stored before the write
	got     []atomic.Bool
	acked   []atomic.Bool
	refused []atomic.Bool // answered with an ERROR_NOTIFICATION
	start   []int64
	phases  []phaseState
	unknown atomic.Int64
	written atomic.Int64 // messages written, over every phase

	// The soak's extras: deliveries that are replays after a resume (counted delivered
	// in their phase, their latency kept apart, since it includes the time the recipient
	// was away), and the histogram of the current sampling window, if any.
	replayed   atomic.Int64
	replayHist hist.Histogram
	window     atomic.Pointer[hist.Histogram]

	// replied, when set, is told the seq and time (as now) of every SERVER_ACK or
	// ERROR_NOTIFICATION: the overload mode's reply latency.
	replied atomic.Pointer[func(seq, now int64)]
}

type phaseState struct {
	mu        sync.Mutex // orders deliveries against the phase's close
	closed    bool
	delivered int64
	late      int64
	dups      atomic.Int64
	acks      atomic.Int64
	replies   atomic.Int64 // acks and errors
	errs      sync.Map     // code → *atomic.Int64
	hist      hist.Histogram
}

func newTracker(specs []phaseSpec) *tracker {
	t := &tracker{base: time.Now(), phases: make([]phaseState, len(specs))}
	var n int64
	for _, s := range specs {
		t.start = append(t.start, n)
		n += sched.Due(float64(s.rate), s.dur)
	}
	t.sentAt = make([]atomic.Int64, n)
	t.got = make([]atomic.Bool, n)
	t.acked = make([]atomic.Bool, n)
	t.refused = make([]atomic.Bool, n)
	return t
}

func (t *tracker) now() int64 { return int64(time.Since(t.base)) }

func (t *tracker) phaseOf(seq int64) int {
	k := len(t.start) - 1
	for k > 0 && seq < t.start[k] {
		k--
	}
	return k
}

// deliver records that message seq reached its recipient at now; replayed says it came
// in the replay that follows a resume.
func (t *tracker) deliver(seq, now int64, replayed bool) {
	if seq < 0 || seq >= int64(len(t.got)) {
		t.unknown.Add(1)
		return
	}
	p := &t.phases[t.phaseOf(seq)]
	if !t.got[seq].CompareAndSwap(false, true) {
		p.dups.Add(1)
		return
	}
	lat := time.Duration(now - t.sentAt[seq].Load())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.late++
		return
	}
	p.delivered++
	if replayed {
		t.replayed.Add(1)
		t.replayHist.Record(lat)
		return
	}
	p.hist.Record(lat)
	if w := t.window.Load(); w != nil {
		w.Record(lat)
	}
}

func (t *tracker) delivered(k int) int64 {
	p := &t.phases[k]
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delivered
}

// close ends phase k: later deliveries count as late.
func (t *tracker) close(k int) {
	p := &t.phases[k]
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}

// reply records a sender's SERVER_ACK or ERROR_NOTIFICATION for the frame pid "c<seq>".
func (t *tracker) reply(f wire.Frame) {
	if len(f.PID) < 2 || f.PID[0] != 'c' {
		return
	}
	seq, err := strconv.ParseInt(string(f.PID[1:]), 10, 64)
	if err != nil || seq < 0 || seq >= int64(len(t.got)) {
		return
	}
	if h := t.replied.Load(); h != nil {
		(*h)(seq, t.now())
	}
	p := &t.phases[t.phaseOf(seq)]
	switch string(f.Type) {
	case wire.TypeAck:
		t.acked[seq].Store(true)
		p.acks.Add(1)
		p.replies.Add(1)
	case wire.TypeError:
		t.refused[seq].Store(true)
		code, _ := strconv.Atoi(string(wire.Field(f.Payload, "code")))
		v, _ := p.errs.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		p.replies.Add(1)
	}
}

// onRecipient handles a recipient's frames: NEW_CHAT_MESSAGE is matched by its
// clientMessageId "L<seq>", or by the "load#<seq>" token in its text when the event does
// not carry the id.
func (t *tracker) onRecipient(_ *client.Conn, f wire.Frame) {
	if string(f.Type) == wire.TypeNewMsg {
		t.onMessage(f, false)
	}
}

// onMessage matches a NEW_CHAT_MESSAGE to its send.
func (t *tracker) onMessage(f wire.Frame, replayed bool) {
	now := t.now()
	if seq, ok := seqOf(wire.Field(f.Payload, "clientMessageId"), "L"); ok {
		t.deliver(seq, now, replayed)
		return
	}
	if seq, ok := seqOf(wire.Field(f.Payload, "text"), "load#"); ok {
		t.deliver(seq, now, replayed)
		return
	}
	t.unknown.Add(1)
}

func (t *tracker) onSender(_ *client.Conn, f wire.Frame) {
	switch string(f.Type) {
	case wire.TypeAck, wire.TypeError:
		t.reply(f)
	}
}

// seqOf parses the digits after prefix in b.
func seqOf(b []byte, prefix string) (int64, bool) {
	if len(b) <= len(prefix) || string(b[:len(prefix)]) != prefix {
		return 0, false
	}
	var n int64
	i := len(prefix)
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, i > len(prefix)
}

// appendMessage writes the SEND_CHAT_MESSAGE of seq: pid "c<seq>", clientMessageId
// "L<seq>", text "load#<seq> ..." (about 60 bytes, like a short chat line).
func appendMessage(dst []byte, seq, to int64) []byte {
	dst = append(dst, `{"type":"SEND_CHAT_MESSAGE","pid":"c`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `","payload":{"toUserId":`...)
	dst = strconv.AppendInt(dst, to, 10)
	dst = append(dst, `,"text":"load#`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, ` hola, esto es un mensaje de prueba de carga","clientMessageId":"L`...)
	dst = strconv.AppendInt(dst, seq, 10)
	return append(dst, `"}}`...)
}

type job struct {
	seq  int64
	pair int
}

// chatSession is what the chat and soak modes share: the pairs, their connections (each
// sender on edge i, its recipient on edge i+1) and the tracker, warmed up.
type chatSession struct {
	pairs               [][2]provision.User
	senders, recipients []*client.Conn
	tr                  *tracker
	con                 *connector
	provision           time.Duration
	warmup, warmupLost  int64
}

// openChat provisions 2×pairs users and their contacts, connects each sender and
// recipient (recipient i with the handler recipient(i), or the tracker's), and runs the
// warm-up rounds; measured are the phases the caller will run after them (the tracker
// plans their sequence numbers). On error what was opened is closed.
func openChat(ctx context.Context, opts *Options, t *Target, pairsN int, measured []phaseSpec, cfg ChatConfig, recipient func(tr *tracker, i int) client.Handler) (*chatSession, error) {
	s := &chatSession{}
	start := time.Now()
	users, err := t.Prov.Users(ctx, 2*pairsN)
	if err != nil {
		return nil, fmt.Errorf("%s: provision %d users: %w", t.Name, 2*pairsN, err)
	}
	s.pairs = make([][2]provision.User, pairsN)
	for i := range s.pairs {
		s.pairs[i] = [2]provision.User{users[2*i], users[2*i+1]}
	}
	if err := t.Prov.Contacts(ctx, s.pairs); err != nil {
		return nil, fmt.Errorf("%s: provision contacts: %w", t.Name, err)
	}
	s.provision = time.Since(start)
	opts.logf(t, "provisioned %d chat users and %d contacts in %v", len(users), len(s.pairs), s.provision.Round(time.Millisecond))

	var specs []phaseSpec
	for range warmups {
		specs = append(specs, phaseSpec{rate: pairsN, dur: time.Second, grace: warmupGrace})
	}
	specs = append(specs, measured...)
	s.tr = newTracker(specs)
	if s.con, err = newConnector(ctx, opts, t, users[0]); err != nil {
		return nil, err
	}
	s.senders = make([]*client.Conn, pairsN)
	s.recipients = make([]*client.Conn, pairsN)
	handler := func(i int) client.Handler { return s.tr.onRecipient }
	if recipient != nil {
		handler = func(i int) client.Handler { return recipient(s.tr, i) }
	}
	if err := connectPairs(ctx, s.con, s.pairs, s.senders, s.recipients, s.tr.onSender, handler); err != nil {
		s.close()
		return nil, fmt.Errorf("%s: connect pairs: %w", t.Name, err)
	}
	if err := sleep(ctx, opts.Settle); err != nil {
		s.close()
		return nil, err
	}
	for k := range warmups {
		ph, err := runPhase(ctx, t, s.tr, k, specs[k], cfg, s.pairs, s.sender)
		if err != nil {
			s.close()
			return nil, err
		}
		opts.logf(t, "chat warm-up %d: %d of %d messages arrived, %d acks (p99 %v)", k+1, ph.Delivered, ph.Sent, ph.Acks, ph.P99)
		s.warmup += ph.Sent
		s.warmupLost = ph.Lost
		if ph.Lost == 0 {
			break
		}
	}
	return s, nil
}

// close drops every connection and waits for their readers.
func (s *chatSession) close() { closeAll(s.senders); closeAll(s.recipients) }

// sender returns pair i's sender connection, for runPhase.
func (s *chatSession) sender(i int) *client.Conn { return s.senders[i] }

// RunChat provisions 2×Pairs users and their contacts, connects each sender and recipient
// (on different edges when there are several), runs one phase per rate and closes.
func RunChat(ctx context.Context, opts *Options, t *Target, cfg ChatConfig) (ChatResult, error) {
	res := ChatResult{Pairs: cfg.Pairs}
	if cfg.Pairs < 1 || len(cfg.Rates) == 0 {
		return res, fmt.Errorf("chat: want at least one pair and one rate, got %d pairs and %d rates", cfg.Pairs, len(cfg.Rates))
	}
	measured := cfg.specs()
	s, err := openChat(ctx, opts, t, cfg.Pairs, measured, cfg, nil)
	if err != nil {
		return res, err
	}
	defer s.close()
	res.Provision, res.Warmup, res.WarmupLost = s.provision, s.warmup, s.warmupLost
	tr := s.tr
	for i, spec := range measured {
		k := warmups + i
		ph, err := runPhase(ctx, t, tr, k, spec, cfg, s.pairs, s.sender)
		if err != nil {
			return res, err
		}
		ph.Dropped = dropped(s.senders) + dropped(s.recipients)
		res.Phases = append(res.Phases, ph)
		rate := spec.rate
		opts.logf(t, "chat %d msg/s for %v: achieved %.0f, p50 %v p99 %v max %v, lost %d of %d, %d acks, errors %v, %d connections closed, cpu %.3f s/1k (db %.3f, load tool %.3f)",
			rate, spec.dur, ph.Achieved, ph.P50, ph.P99, ph.Max, ph.Lost, ph.Sent, ph.Acks, ph.AckErrors, ph.Dropped, Per1000(ph.CPU, ph.Sent), Per1000(ph.DBCPU, ph.Sent), Per1000(ph.ClientCPU, ph.Sent))
	}
	if last := len(res.Phases) - 1; len(measured) > len(cfg.Rates) && cfg.SoakSettle > 0 {
		if err := settle(ctx, tr, warmups+last, res.Phases[last].Sent, cfg.SoakSettle); err != nil {
			return res, err
		}
	}
	for i := range res.Phases {
		ph := &res.Phases[i]
		p := &tr.phases[warmups+i]
		p.mu.Lock()
		ph.Late = p.late
		p.mu.Unlock()
		ph.Outcome = tr.outcome(warmups+i, ph.Offered, ph.Sent)
	}
	if len(measured) > len(cfg.Rates) {
		soak := res.Phases[len(cfg.Rates)]
		res.Soak = &soak
		res.Phases = res.Phases[:len(cfg.Rates)]
	}
	return res, nil
}

// settle waits, at most bound, until each of the sent messages of phase k has been
// answered (SERVER_ACK or error) and each acknowledged one delivered.
func settle(ctx context.Context, tr *tracker, k int, sent int64, bound time.Duration) error {
	end := time.Now().Add(bound)
	p := &tr.phases[k]
	for time.Now().Before(end) {
		if p.replies.Load() >= sent && tr.delivered(k)+p.errCount() >= sent {
			return nil
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// errCount is how many of the phase's messages were answered with an error so far.
func (p *phaseState) errCount() int64 {
	var n int64
	p.errs.Range(func(_, v any) bool {
		n += v.(*atomic.Int64).Load()
		return true
	})
	return n
}

// dropped counts the connections whose reader has ended (closed by the server or the network).
func dropped(conns []*client.Conn) int {
	n := 0
	for _, c := range conns {
		if c != nil && c.Err() != nil {
			n++
		}
	}
	return n
}

func connectPairs(ctx context.Context, con *connector, pairs [][2]provision.User, senders, recipients []*client.Conn, onSender client.Handler, onRecipient func(i int) client.Handler) error {
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, max(con.opts.Concurrency, 1))
	var wg sync.WaitGroup
	for i := range pairs {
		for side := range 2 {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				h, edge, dst := onSender, i, senders
				if side == 1 {
					h, edge, dst = onRecipient(i), i+1, recipients
				}
				c, _, err := con.dial(ctx, i, edge, pairs[i][side], h)
				mu.Lock()
				defer mu.Unlock()
				dst[i] = c
				if err != nil && firstErr == nil {
					firstErr = err
				}
			})
		}
	}
	wg.Wait()
	return firstErr
}

// sendWindow is how long after a phase's end a due message may still be written; the
// rest count as unsent.
const sendWindow = time.Second

// runPhase offers spec's rate for its duration; sender(i) is pair i's sender connection
// at the moment of a write.
func runPhase(ctx context.Context, t *Target, tr *tracker, k int, spec phaseSpec, cfg ChatConfig, pairs [][2]provision.User, sender func(i int) *client.Conn) (ChatPhase, error) {
	rate := spec.rate
	ph := ChatPhase{Rate: rate, Duration: spec.dur}
	pacer, err := sched.NewPacer(float64(rate), spec.dur)
	if err != nil {
		return ph, fmt.Errorf("chat phase %d: %w", rate, err)
	}
	ph.Offered = pacer.Total()
	cpu0, db0, err := t.Sample()
	if err != nil {
		return ph, err
	}
	self0, err := procfs.CPU(os.Getpid())
	if err != nil {
		return ph, err
	}
	workers := max(cfg.Workers, 1)
	queues := make([]chan job, workers)
	var sent, unsent, writeErrs atomic.Int64
	var lastWrite atomic.Int64
	begin := time.Now()
	deadline := begin.Add(spec.dur + sendWindow)
	var wg sync.WaitGroup
	for w := range queues {
		queues[w] = make(chan job, 4096)
		wg.Go(func() {
			buf := make([]byte, 0, 256)
			for j := range queues[w] {
				if time.Now().After(deadline) {
					unsent.Add(1)
					continue
				}
				buf = appendMessage(buf[:0], j.seq, pairs[j.pair][1].ID)
				tr.sentAt[j.seq].Store(tr.now())
				if err := sender(j.pair).Write(buf); err != nil {
					writeErrs.Add(1)
					continue
				}
				sent.Add(1)
				tr.written.Add(1)
				lastWrite.Store(int64(time.Since(begin)))
			}
		})
	}
	seq := tr.start[k]
	ticker := time.NewTicker(time.Millisecond)
	for !pacer.Done() && ctx.Err() == nil {
		for n := pacer.Step(time.Since(begin)); n > 0; n-- {
			pair := int(seq % int64(len(pairs)))
			select {
			case queues[pair%workers] <- job{seq: seq, pair: pair}:
			case <-ctx.Done():
			}
			seq++
		}
		if !pacer.Done() {
			select {
			case <-ticker.C:
			case <-ctx.Done():
			}
		}
	}
	ticker.Stop()
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return ph, err
	}
	ph.Sent, ph.Unsent, ph.WriteErrs = sent.Load(), unsent.Load(), writeErrs.Load()
	ph.SendTook = max(spec.dur, time.Duration(lastWrite.Load()))
	ph.Achieved = float64(ph.Sent) / ph.SendTook.Seconds()
	grace := cfg.Grace
	if spec.grace > 0 {
		grace = spec.grace
	}
	drainEnd := begin.Add(ph.SendTook + grace)
	// Drain: wait for every written message and its reply (on the sender's connection,
	// read by another goroutine than the delivery), at most Grace after the last write.
	for (tr.delivered(k) < ph.Sent || tr.phases[k].replies.Load() < ph.Sent) && time.Now().Before(drainEnd) {
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return ph, err
		}
	}
	ph.Drain = max(time.Since(begin)-ph.SendTook, 0)
	tr.close(k)
	cpu1, db1, err := t.Sample()
	if err != nil {
		return ph, err
	}
	self1, err := procfs.CPU(os.Getpid())
	if err != nil {
		return ph, err
	}
	ph.ClientCPU = self1 - self0
	p := &tr.phases[k]
	ph.Delivered = tr.delivered(k)
	ph.Lost = ph.Sent - ph.Delivered
	ph.Dups = p.dups.Load()
	ph.Acks = p.acks.Load()
	ph.AckErrors = map[int]int64{}
	p.errs.Range(func(code, n any) bool {
		ph.AckErrors[code.(int)] = n.(*atomic.Int64).Load()
		return true
	})
	ph.P50, ph.P90, ph.P99, ph.Max = p.hist.Percentile(0.50), p.hist.Percentile(0.90), p.hist.Percentile(0.99), p.hist.Max()
	ph.CPU, ph.DBCPU = cpu1.CPU-cpu0.CPU, db1.CPU-db0.CPU
	return ph, nil
}
