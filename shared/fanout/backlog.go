package fanout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/charla/charla/shared/eventlog"
)

// ErrKept is wrapped by the error Publish returns when a sequenced event could not be
// appended before the caller's context ended (the event log unreachable: NATS away) and
// the publisher kept it to append later. The event is not lost: it gets its seq when
// the log is back, and edges and resuming clients see it then (docs/protocol.md §8.3).
var ErrKept = errors.New("event kept to append when the event log is back")

// MaxBacklog bounds the events a publisher keeps for an unreachable log. Past it an
// event is refused (Publish's error does not wrap ErrKept): memory stays bounded however
// long the log stays away. At a few hundred bytes an event it is tens of MB at most.
const MaxBacklog = 50_000

// closeFlush is how long Close waits for kept events to reach a log that is back.
const closeFlush = 5 * time.Second

// kept is an event waiting for the log.
type kept struct {
	ev    eventlog.Event
	users []int64
}

// backlog holds sequenced events whose append failed until their caller gave up, and
// appends them in the order kept, one at a time, from one goroutine that runs only while
// the backlog is not empty (an idle publisher has no goroutine).
type backlog struct {
	mu      sync.Mutex
	items   []kept
	running bool          // the drain goroutine runs
	closed  bool          // Close was called: nothing more is kept
	drained chan struct{} // closed by the drain goroutine when it exits; nil while idle
	ctx     context.Context
	cancel  context.CancelFunc
}

func newBacklog() *backlog {
	ctx, cancel := context.WithCancel(context.Background())
	return &backlog{ctx: ctx, cancel: cancel}
}

// keep queues ev for users and starts the drain goroutine if it is idle. It returns false
// when the backlog is full or closed.
func (b *backlog) keep(p *Publisher, ev eventlog.Event, users []int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || len(b.items) >= MaxBacklog {
		return false
	}
	b.items = append(b.items, kept{ev: ev, users: users})
	if !b.running {
		b.running = true
		b.drained = make(chan struct{})
		go b.drain(p, b.drained)
	}
	return true
}

// drain appends the kept events in order, each retried until it succeeds or the backlog
// is closed, and exits when none is left.
func (b *backlog) drain(p *Publisher, done chan struct{}) {
	defer close(done)
	for {
		b.mu.Lock()
		if len(b.items) == 0 {
			b.running = false
			b.items = nil // let a backlog that once grew large shrink
			b.mu.Unlock()
			return
		}
		head := b.items[0]
		b.mu.Unlock()
		if err := p.appendRetrying(b.ctx, head.ev, head.users); err != nil {
			// Closed while the log is still away: Close counts what is left.
			b.mu.Lock()
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Lock()
		b.items[0] = kept{}
		b.items = b.items[1:]
		b.mu.Unlock()
	}
}

// len returns how many events wait.
func (b *backlog) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.items)
}

// close stops keeping events, gives the drain goroutine up to wait to append what is
// kept, then stops it; it returns how many events were never appended.
func (b *backlog) close(wait time.Duration) int {
	b.mu.Lock()
	b.closed = true
	done := b.drained
	b.mu.Unlock()
	if done != nil {
		t := time.NewTimer(wait)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	b.cancel()
	if done != nil {
		<-done
	}
	return b.len()
}

// Backlog returns how many sequenced events wait for the event log (ErrKept).
func (p *Publisher) Backlog() int { return p.backlog.len() }

// Close stops the publisher: it waits a few seconds for kept events (ErrKept) to reach
// the log, and returns an error counting those that never did. Publish after Close
// keeps nothing.
func (p *Publisher) Close() error {
	if n := p.backlog.close(closeFlush); n > 0 {
		return fmt.Errorf("%s publisher closed with %d events never appended: event log unreachable", p.service, n)
	}
	return nil
}
