package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla/charla/chatsvc/internal/chat"
	"github.com/charla/charla/shared/telemetry"
)

// ErrWriterClosed is returned by Writer.Insert and Writer.Deliver after Close.
var ErrWriterClosed = errors.New("message writer closed")

// DefaultMaxBatch bounds how many operations (messages and receipts) one group commit holds.
const DefaultMaxBatch = 256

// Linger is how long a busy writer waits for more operations before committing a batch.
const Linger = 300 * time.Microsecond

// batchTimeout bounds one batch transaction, whatever its callers' contexts say: the
// batch belongs to all of them.
const batchTimeout = 30 * time.Second

// Writer stores messages and delivery receipts through one goroutine that batches the
// operations waiting at the same time into one transaction (group commit). One commit per
// operation caps throughput at the database's commit rate (an fsync each on MySQL); a
// batch pays that once for all of them. Each caller is answered only after the commit of
// its batch, so an acknowledged message is durable. The single writer also gives messages
// ids in the order they were queued and a CreatedAt that never decreases as ids grow.
//
// Receipts (MarkDelivered, history fetches) share the batches of the inserts: all the
// receipts of a batch cost one SELECT and one forward-only UPDATE, and their changes come
// back grouped per chat and sender, so each group is one MESSAGE_STATUS_UPDATE however
// many receipts (edges, tabs) reported its messages.
//
// With several chatsvc processes each has its own writer; ids stay unique and increasing
// per process, and the unique key still makes idempotent retries safe across processes.
type Writer struct {
	store    *Store
	maxBatch int
	linger   time.Duration
	now      func() time.Time

	mu     sync.RWMutex // guards closed against sends on a closed channel
	closed bool
	reqs   chan *writeReq
	done   chan struct{}

	last int64 // newest CreatedAt given; touched only by the writer goroutine

	batches, ops atomic.Int64
}

// Stats returns how many batches the writer committed and how many operations (messages
// and receipts) they held.
func (w *Writer) Stats() (batches, ops int64) {
	return w.batches.Load(), w.ops.Load()
}

// writeReq is one queued operation: a message to insert, or a receipt when receipt is set.
type writeReq struct {
	ctx     context.Context
	msg     chat.Message
	receipt *Receipt
	res     chan writeRes
}

type writeRes struct {
	ins Inserted
	dlv Delivery
	err error
}

// Delivery is the outcome of one Deliver call.
type Delivery struct {
	// Changed are the call's messages that moved to delivered, ascending.
	Changed []int64
	// Announce are the changes of the batch, grouped per chat and sender, that this caller
	// is to announce: each group goes to exactly one caller of the batch (the first that
	// changed one of its messages), so each becomes one MESSAGE_STATUS_UPDATE.
	Announce []DeliveredGroup
}

// DeliveredGroup is messages of one chat and one sender that moved to delivered together.
type DeliveredGroup struct {
	ChatID, FromUserID int64
	// IDs ascending.
	IDs []int64
}

// NewWriter starts a writer over s. now may be nil (time.Now). Close stops it.
func (s *Store) NewWriter(maxBatch int, now func() time.Time) *Writer {
	w := s.newWriter(maxBatch, now)
	go w.run()
	return w
}

// newWriter returns a writer whose goroutine is not started yet (tests queue a batch first).
func (s *Store) newWriter(maxBatch int, now func() time.Time) *Writer {
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	if now == nil {
		now = time.Now
	}
	w := &Writer{
		store:    s,
		maxBatch: maxBatch,
		linger:   Linger,
		now:      now,
		reqs:     make(chan *writeReq, maxBatch*4),
		done:     make(chan struct{}),
	}
	return w
}

// Insert stores m (its ID, CreatedAt and Status are set by the writer) and returns the
// stored row, or the original row when m's ClientMessageId was taken. It returns after the
// commit. ctx counts until the batch holding m starts: a caller that gives up before gets
// ctx's error and m is not stored; once its batch is being written, Insert waits for the
// outcome whatever ctx says, so a stored message is always reported (and announced) —
// never stored silently behind an error.
func (w *Writer) Insert(ctx context.Context, m chat.Message) (Inserted, error) {
	r, err := w.submit(&writeReq{ctx: ctx, msg: m})
	return r.ins, err
}

// InsertMany is Insert for several messages at once: they are queued back to back, so they
// share a group commit (or as few as MaxBatch allows), and it returns after every commit.
// out[i] is msgs[i]'s outcome; errs[i] its error, nil when it was stored (or found to be a
// repeat). ctx counts as for Insert.
func (w *Writer) InsertMany(ctx context.Context, msgs []chat.Message) (out []Inserted, errs []error) {
	reqs := make([]*writeReq, len(msgs))
	for i := range msgs {
		reqs[i] = &writeReq{ctx: ctx, msg: msgs[i]}
	}
	out = make([]Inserted, len(msgs))
	errs = make([]error, len(msgs))
	for i, r := range w.submitAll(reqs) {
		out[i], errs[i] = r.ins, r.err
	}
	return out, errs
}

// Deliver moves the messages among ids that were sent to recipient and are still
// sent_to_server to delivered, in the next batch, and returns after its commit. ctx
// counts as for Insert.
func (w *Writer) Deliver(ctx context.Context, recipient int64, ids []int64) (Delivery, error) {
	out, errs := w.DeliverMany(ctx, []Receipt{{Recipient: recipient, IDs: ids}})
	return out[0], errs[0]
}

// DeliverMany is Deliver for several receipts at once: they are queued back to back, so
// they share a batch (or as few as MaxBatch allows), and it returns after every commit.
// out[i] is receipts[i]'s outcome; errs[i] its error, nil when it was stored.
func (w *Writer) DeliverMany(ctx context.Context, receipts []Receipt) (out []Delivery, errs []error) {
	reqs := make([]*writeReq, len(receipts))
	for i, rc := range receipts {
		if len(rc.IDs) > 0 { // nothing to deliver: no request, a zero outcome
			reqs[i] = &writeReq{ctx: ctx, receipt: &rc}
		}
	}
	out = make([]Delivery, len(receipts))
	errs = make([]error, len(receipts))
	for i, r := range w.submitAll(reqs) {
		out[i], errs[i] = r.dlv, r.err
	}
	return out, errs
}

// submitAll queues reqs back to back (nil ones are skipped and answered with a zero
// result), so that they share a batch, and returns each one's answer once every commit is
// done. A request that could not be queued is answered with that error.
func (w *Writer) submitAll(reqs []*writeReq) []writeRes {
	res := make([]writeRes, len(reqs))
	queued := make([]bool, len(reqs))
	for i, req := range reqs {
		if req == nil {
			continue
		}
		if res[i].err = w.enqueue(req); res[i].err == nil {
			queued[i] = true
		}
	}
	for i, req := range reqs {
		if queued[i] {
			res[i] = <-req.res // bounded by batchTimeout
		}
	}
	return res
}

func (w *Writer) submit(req *writeReq) (writeRes, error) {
	if err := w.enqueue(req); err != nil {
		return writeRes{}, err
	}
	r := <-req.res // bounded by batchTimeout
	return r, r.err
}

// enqueue queues req for the writer goroutine, which answers on req.res.
func (w *Writer) enqueue(req *writeReq) error {
	req.res = make(chan writeRes, 1)
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrWriterClosed
	}
	select {
	case w.reqs <- req:
		return nil
	case <-req.ctx.Done():
		return req.ctx.Err()
	}
}

// Close stores what is queued, stops the writer and waits for it.
func (w *Writer) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.reqs)
	}
	w.mu.Unlock()
	<-w.done
	return nil
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]*writeReq, 0, w.maxBatch)
	busy := false
	for first := range w.reqs {
		batch = append(batch[:0], first)
		open := true
		var (
			linger <-chan time.Time
			timer  *time.Timer
		)
		if busy {
			// The last batch had company: more senders are on their way. Waiting a
			// moment for them costs each a fraction of a millisecond and saves a
			// BEGIN/COMMIT per message; an idle writer never waits.
			timer = time.NewTimer(w.linger)
			linger = timer.C
		}
	drain:
		for len(batch) < w.maxBatch {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					open = false
					break drain
				}
				batch = append(batch, r)
			default:
				if linger == nil {
					break drain
				}
				select {
				case r, ok := <-w.reqs:
					if !ok {
						open = false
						break drain
					}
					batch = append(batch, r)
				case <-linger:
					break drain
				}
			}
		}
		if timer != nil {
			timer.Stop()
		}
		busy = len(batch) > 1
		w.flush(batch)
		if !open {
			return
		}
	}
}

// flush writes one batch in one transaction. If that fails, each message is retried in a
// transaction of its own, so one bad message does not fail the others, and the receipts
// together in another.
func (w *Writer) flush(batch []*writeReq) {
	var (
		live     = batch[:0:0]
		msgReqs  []*writeReq
		msgs     []chat.Message
		rcptReqs []*writeReq
		receipts []Receipt
	)
	for _, r := range batch {
		if r.ctx.Err() != nil {
			// The caller gave up before anything was written: do nothing for it.
			r.res <- writeRes{err: r.ctx.Err()}
			continue
		}
		live = append(live, r)
		if r.receipt != nil {
			rcptReqs = append(rcptReqs, r)
			receipts = append(receipts, *r.receipt)
		} else {
			msgReqs = append(msgReqs, r)
		}
	}
	if len(live) == 0 {
		return
	}
	now := w.now().UnixMilli()
	if now < w.last {
		now = w.last
	}
	w.last = now
	msgs = make([]chat.Message, len(msgReqs))
	for i, r := range msgReqs {
		msgs[i] = r.msg
		msgs[i].CreatedAt = now
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	// The batch runs for many requests at once: its span (and its statements') belongs to
	// the first traced caller's trace and links to the others, so every send's trace shows
	// the INSERT that stored it. Untraced batches get no span.
	members := make([]context.Context, len(live))
	for i, r := range live {
		members[i] = r.ctx
	}
	ctx, endSpan := telemetry.StartBatchSpan(ctx, "chat.write_batch", members...)
	ins, dlv, err := w.store.WriteBatch(ctx, msgs, receipts)
	batchErr := err
	defer func() { endSpan(batchErr) }()
	w.batches.Add(1)
	w.ops.Add(int64(len(live)))
	if err == nil {
		for i, r := range msgReqs {
			r.res <- writeRes{ins: ins[i]}
		}
		answerReceipts(rcptReqs, dlv)
		return
	}
	if len(live) == 1 {
		live[0].res <- writeRes{err: err}
		return
	}
	for i, r := range msgReqs {
		one, err := w.store.InsertMessages(ctx, msgs[i:i+1])
		if err != nil {
			r.res <- writeRes{err: fmt.Errorf("store message alone after batch failure: %w", err)}
			continue
		}
		r.res <- writeRes{ins: one[0]}
	}
	if len(rcptReqs) == 0 {
		return
	}
	dlv, err = w.store.MarkDeliveredBatch(ctx, receipts)
	if err != nil {
		for _, r := range rcptReqs {
			r.res <- writeRes{err: fmt.Errorf("mark delivered after batch failure: %w", err)}
		}
		return
	}
	answerReceipts(rcptReqs, dlv)
}

// answerReceipts answers each receipt with what it changed, and gives every chat+sender
// group of the batch's changes to the first receipt that contributed to it.
func answerReceipts(reqs []*writeReq, dlv [][]Delivered) {
	type key struct{ chat, from int64 }
	type owned struct {
		owner int
		group DeliveredGroup
	}
	var (
		groups []owned
		index  map[key]int
		res    = make([]Delivery, len(reqs))
	)
	for i, changed := range dlv {
		if len(changed) == 0 {
			continue
		}
		res[i].Changed = make([]int64, len(changed))
		for j, d := range changed {
			res[i].Changed[j] = d.ID
			k := key{d.ChatID, d.FromUserID}
			g, ok := index[k]
			if !ok {
				if index == nil {
					index = make(map[key]int)
				}
				g = len(groups)
				index[k] = g
				groups = append(groups, owned{owner: i, group: DeliveredGroup{ChatID: d.ChatID, FromUserID: d.FromUserID}})
			}
			groups[g].group.IDs = append(groups[g].group.IDs, d.ID)
		}
	}
	for _, g := range groups {
		slices.Sort(g.group.IDs) // receipts of one batch may interleave
		res[g.owner].Announce = append(res[g.owner].Announce, g.group)
	}
	for i, r := range reqs {
		r.res <- writeRes{dlv: res[i]}
	}
}
