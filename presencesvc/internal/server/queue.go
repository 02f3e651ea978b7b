package server

import (
	"context"
	"sync"

	"github.com/charla/charla/presencesvc/internal/presence"
)

// Sizes of the announcement queue.
const (
	// queueWorkers is how many goroutines announce. Each owns the users that hash to it,
	// so a user's announcements leave in the order they were queued.
	queueWorkers = 2
	// queueDepth bounds the transitions waiting for one worker; a full queue makes Connect
	// and Disconnect wait (back-pressure) rather than grow memory without limit.
	queueDepth = 1024
	// maxAnnounceBatch bounds the transitions one worker announces together (one
	// ListContactIds call and one route query for all of them).
	maxAnnounceBatch = 256
)

// queued is one transition waiting to be announced, or (flush != nil) a marker that is
// signalled once everything queued before it on its worker has been announced.
type queued struct {
	ctx   context.Context // the request's, without its cancellation: trace context
	t     presence.Transition
	flush chan struct{}
}

// announceQueue announces transitions after their commit, off the caller's path, in
// per-user order: a user always hashes to the same worker, each worker's queue is FIFO,
// and callers enqueue under the user's stripe lock, so the order of enqueueing is the
// order of commit. A worker announces whatever has piled up in its queue as one batch,
// so that under load many transitions share one contact lookup and one route query.
type announceQueue struct {
	a       *Announcer
	mu      sync.RWMutex // held shared by senders, exclusively by close
	closed  bool
	workers [queueWorkers]chan queued
	wg      sync.WaitGroup
}

func newAnnounceQueue(a *Announcer) *announceQueue {
	q := &announceQueue{a: a}
	for i := range q.workers {
		ch := make(chan queued, queueDepth)
		q.workers[i] = ch
		q.wg.Add(1)
		go q.run(ch)
	}
	return q
}

func (q *announceQueue) worker(userID int64) chan queued {
	// Fibonacci hashing, as userLocks: consecutive ids spread over the workers.
	return q.workers[((uint64(userID)*0x9E3779B97F4A7C15)>>32)%queueWorkers]
}

// enqueue queues the changed transitions among ts. Call it under the stripe locks of
// their users. After close, it announces them synchronously instead, so none is lost.
func (q *announceQueue) enqueue(ctx context.Context, ts ...presence.Transition) {
	ctx = context.WithoutCancel(ctx)
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		q.a.Announce(ctx, ts...)
		return
	}
	for _, t := range ts {
		if t.Changed {
			q.worker(t.UserID) <- queued{ctx: ctx, t: t}
		}
	}
	q.mu.RUnlock()
}

// flush waits until every transition queued before the call has been announced.
func (q *announceQueue) flush() {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return // close drained everything
	}
	marks := make([]chan struct{}, 0, len(q.workers))
	for _, w := range q.workers {
		m := make(chan struct{})
		w <- queued{flush: m}
		marks = append(marks, m)
	}
	q.mu.RUnlock()
	for _, m := range marks {
		<-m
	}
}

// close stops the workers once they have announced everything queued, and waits for them.
func (q *announceQueue) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		for _, w := range q.workers {
			close(w)
		}
	}
	q.mu.Unlock()
	q.wg.Wait()
}

// run is one worker: it takes what has piled up (up to maxAnnounceBatch) and announces it
// as one batch, until its queue is closed and empty.
func (q *announceQueue) run(ch chan queued) {
	defer q.wg.Done()
	batch := make([]queued, 0, maxAnnounceBatch)
	for first := range ch {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxAnnounceBatch {
			select {
			case it, ok := <-ch:
				if !ok {
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
		q.a.announceQueued(batch)
		for _, it := range batch {
			if it.flush != nil {
				close(it.flush)
			}
		}
		clear(batch) // drop the contexts
	}
}
