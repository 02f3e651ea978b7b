package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla/charla/chatsvc/internal/chat"
	"github.com/charla/charla/shared/telemetry"
)

// ErrWriterClosed is returned by Writer.Insert after Close.
var ErrWriterClosed = errors.New("message writer closed")

// DefaultMaxBatch bounds how many messages one group commit stores.
const DefaultMaxBatch = 256

// Linger is how long a busy writer waits for more messages before committing a batch.
const Linger = 300 * time.Microsecond

// batchTimeout bounds one batch transaction, whatever its callers' contexts say: the
// batch belongs to all of them.
const batchTimeout = 30 * time.Second

// Writer stores messages through one goroutine that batches the inserts waiting at the
// same time into one transaction (group commit). One commit per message caps throughput
// at the database's commit rate (an fsync each on MySQL); a batch pays that once for all
// its messages. Each caller is answered only after the commit of its batch, so an
// acknowledged message is durable. The single writer also gives messages ids in the order
// they were queued and a CreatedAt that never decreases as ids grow.
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

	batches, messages atomic.Int64
}

// Stats returns how many batches the writer committed and how many messages they held.
func (w *Writer) Stats() (batches, messages int64) {
	return w.batches.Load(), w.messages.Load()
}

type writeReq struct {
	ctx context.Context
	msg chat.Message
	res chan writeRes
}

type writeRes struct {
	ins Inserted
	err error
}

// NewWriter starts a writer over s. now may be nil (time.Now). Close stops it.
func (s *Store) NewWriter(maxBatch int, now func() time.Time) *Writer {
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
	go w.run()
	return w
}

// Insert stores m (its ID, CreatedAt and Status are set by the writer) and returns the
// stored row, or the original row when m's ClientMessageId was taken. It returns after the
// commit. ctx counts until the batch holding m starts: a caller that gives up before gets
// ctx's error and m is not stored; once its batch is being written, Insert waits for the
// outcome whatever ctx says, so a stored message is always reported (and announced) —
// never stored silently behind an error.
func (w *Writer) Insert(ctx context.Context, m chat.Message) (Inserted, error) {
	req := &writeReq{ctx: ctx, msg: m, res: make(chan writeRes, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return Inserted{}, ErrWriterClosed
	}
	select {
	case w.reqs <- req:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return Inserted{}, ctx.Err()
	}
	r := <-req.res // bounded by batchTimeout
	return r.ins, r.err
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

// flush stores one batch. If the batch transaction fails, each message is retried in a
// transaction of its own, so one bad message does not fail the others.
func (w *Writer) flush(batch []*writeReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if r.ctx.Err() != nil {
			// The caller gave up before anything was written: store nothing for it.
			r.res <- writeRes{err: r.ctx.Err()}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	now := w.now().UnixMilli()
	if now < w.last {
		now = w.last
	}
	w.last = now
	msgs := make([]chat.Message, len(live))
	for i, r := range live {
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
	ctx, endSpan := telemetry.StartBatchSpan(ctx, "chat.insert_messages", members...)
	res, err := w.store.InsertMessages(ctx, msgs)
	defer func() { endSpan(err) }()
	w.batches.Add(1)
	w.messages.Add(int64(len(msgs)))
	if err == nil {
		for i, r := range live {
			r.res <- writeRes{ins: res[i]}
		}
		return
	}
	if len(live) == 1 {
		live[0].res <- writeRes{err: err}
		return
	}
	for i, r := range live {
		one, err := w.store.InsertMessages(ctx, msgs[i:i+1])
		if err != nil {
			r.res <- writeRes{err: fmt.Errorf("store message alone after batch failure: %w", err)}
			continue
		}
		r.res <- writeRes{ins: one[0]}
	}
}
