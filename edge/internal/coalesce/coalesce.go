// Package coalesce gathers concurrent calls into batch calls: while one batch is in
// flight, new calls wait in a queue, and when it returns, everything queued goes out
// together in the next batch (up to Options.Max). Under light load each call is a batch of
// one and goes out at once, with no timer and no added wait; the more calls arrive while
// a batch is under way, the larger the next one, so the cost of a round trip (an RPC, a
// commit) is shared by everyone who arrived during the last one.
//
// The edge uses it for the two calls of every handshake, ResolveSessions and ConnectMany:
// during a burst of handshakes, one RPC carries dozens of them.
//
// A Batcher runs at most one batch at a time, in a goroutine that exists only while calls
// are queued and ends when the queue is empty. A caller whose context ends stops waiting
// at once; its request may still be part of a batch already sent. Submit queues a request
// without waiting at all: its answer goes to a callback, so a burst of requests (an edge's
// connections all closing at once) holds one goroutine, the batcher's, rather than one per
// request. Each batch has a span
// (telemetry.StartBatchSpan): a child of its first traced caller's, linked to the others'.
package coalesce

import (
	"context"
	"fmt"
	"sync"

	"github.com/charla/charla/shared/telemetry"
)

// Call makes one batch call: it answers reqs in their order, one result each (a result
// may carry its own error), or fails as a whole. ctx carries the values (the trace) of the
// batch's first caller, not its deadline or cancellation: one caller giving up must not
// fail the others; it carries the batch's span. The Call bounds its own time.
type Call[Req, Res any] func(ctx context.Context, reqs []Req) ([]Result[Res], error)

// Result is one request's answer within a batch.
type Result[Res any] struct {
	Value Res
	Err   error
}

// Options configure a Batcher.
type Options struct {
	// Max bounds the requests of one batch; 0 means DefaultMax.
	Max int
	// Name names the batch's span.
	Name string
}

// DefaultMax is the default bound of a batch.
const DefaultMax = 64

// Batcher coalesces calls; see the package comment. Safe for concurrent use.
type Batcher[Req, Res any] struct {
	call Call[Req, Res]
	opt  Options

	mu      sync.Mutex
	queue   []*waiter[Req, Res]
	running bool           // the runner goroutine is alive
	wg      sync.WaitGroup // the runner (tests wait for it)
}

type waiter[Req, Res any] struct {
	ctx  context.Context
	req  Req
	done chan Result[Res] // capacity 1: the runner never blocks on it; nil for Submit
	// onDone receives the answer of a Submit, on the runner's goroutine.
	onDone func(Result[Res])
}

// answer hands the waiter its result.
func (w *waiter[Req, Res]) answer(r Result[Res]) {
	if w.onDone != nil {
		w.onDone(r)
		return
	}
	w.done <- r
}

// New returns a Batcher that makes its batches with call.
func New[Req, Res any](call Call[Req, Res], o Options) *Batcher[Req, Res] {
	if o.Max <= 0 {
		o.Max = DefaultMax
	}
	if o.Name == "" {
		o.Name = "batch"
	}
	return &Batcher[Req, Res]{call: call, opt: o}
}

// Do queues req for the next batch and waits for its answer, or for ctx to end.
func (b *Batcher[Req, Res]) Do(ctx context.Context, req Req) (Res, error) {
	w := &waiter[Req, Res]{ctx: ctx, req: req, done: make(chan Result[Res], 1)}
	b.enqueue(w)
	select {
	case r := <-w.done:
		return r.Value, r.Err
	case <-ctx.Done():
		var zero Res
		return zero, ctx.Err()
	}
}

// Submit queues req for the next batch and returns at once; onDone receives its answer
// (ctx's error when ctx ends before the batch is sent) on the batcher's goroutine, one
// answer at a time, so it must not block. Nothing waits for the batch: the caller needs
// no goroutine of its own.
func (b *Batcher[Req, Res]) Submit(ctx context.Context, req Req, onDone func(Result[Res])) {
	b.enqueue(&waiter[Req, Res]{ctx: ctx, req: req, onDone: onDone})
}

// Queued returns how many requests wait for a batch (for tests and metrics).
func (b *Batcher[Req, Res]) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// enqueue adds w to the queue and starts the runner if it is not running.
func (b *Batcher[Req, Res]) enqueue(w *waiter[Req, Res]) {
	b.mu.Lock()
	b.queue = append(b.queue, w)
	if !b.running {
		b.running = true
		b.wg.Add(1)
		go b.run()
	}
	b.mu.Unlock()
}

// run makes batches until the queue is empty.
func (b *Batcher[Req, Res]) run() {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		n := min(len(b.queue), b.opt.Max)
		if n == 0 {
			b.running = false
			b.queue = nil // let a burst's large backing array go
			b.mu.Unlock()
			return
		}
		batch := make([]*waiter[Req, Res], n)
		copy(batch, b.queue)
		clear(b.queue[:n])
		b.queue = b.queue[n:]
		b.mu.Unlock()
		b.send(batch)
	}
}

// send makes one batch call for the waiters still waiting and answers each.
func (b *Batcher[Req, Res]) send(batch []*waiter[Req, Res]) {
	live := batch[:0]
	for _, w := range batch {
		if err := w.ctx.Err(); err != nil {
			w.answer(Result[Res]{Err: err})
			continue
		}
		live = append(live, w)
	}
	if len(live) == 0 {
		return
	}
	reqs := make([]Req, len(live))
	for i, w := range live {
		reqs[i] = w.req
	}
	members := make([]context.Context, len(live))
	for i, w := range live {
		members[i] = w.ctx
	}
	ctx, end := telemetry.StartBatchSpan(context.WithoutCancel(live[0].ctx), b.opt.Name, members...)
	results, err := b.call(ctx, reqs)
	if err == nil && len(results) != len(live) {
		err = fmt.Errorf("batch of %d answered with %d results", len(live), len(results))
	}
	end(err)
	for i, w := range live {
		if err != nil {
			w.answer(Result[Res]{Err: err})
			continue
		}
		w.answer(results[i])
	}
}
