// Package cursor keeps one connection's place in its user's event sequence
// (docs/protocol.md §8.2–§8.3): it passes on each sequenced record exactly once and in seq
// order, whatever order, repetition or gaps the edge's log stream and catch-up reads bring.
//
// A cursor starts Starting: records offered meanwhile are held until Start gives the
// connection's first seq (CONNECTED's lastSeq + 1) and the replayed records of a resume.
// Live, a record with the next seq is passed on; an older one is a duplicate and dropped; a
// newer one reveals a gap (the log stream broke, or a record reached the edge before one
// that precedes it), so the cursor starts CatchingUp: it holds records and asks its owner
// to read the missing ones from the history, which CaughtUp then hands in.
//
// Deliver runs under the cursor's lock, so a connection's records are written in order
// even though the stream and catch-up reads run on different goroutines. It must not block.
package cursor

import "sync"

// State is where a cursor stands.
type State int

// States of a cursor.
const (
	Starting State = iota
	Live
	CatchingUp
	Failed
)

// MaxHeld bounds the records held while starting or catching up; past it the cursor fails
// (the connection is closed and its client resumes).
const MaxHeld = 8192

// Cursor is one connection's place in its user's sequence. Safe for concurrent use.
type Cursor[T any] struct {
	seqOf   func(T) uint64
	deliver func(T)

	mu    sync.Mutex
	state State
	next  uint64 // the seq to pass on next
	held  []T
}

// New returns a Starting cursor that passes records on to deliver; seqOf tells a record's seq.
func New[T any](seqOf func(T) uint64, deliver func(T)) *Cursor[T] {
	return &Cursor[T]{seqOf: seqOf, deliver: deliver}
}

// State returns the cursor's state.
func (c *Cursor[T]) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Next returns the seq the cursor passes on next (0 while starting).
func (c *Cursor[T]) Next() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

// Offer hands in a record from the live stream. It returns true when the cursor has just
// found a gap: the owner must read the records after Next()-1 and call CaughtUp.
func (c *Cursor[T]) Offer(r T) (catchUp bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case Starting, CatchingUp:
		c.holdLocked(r)
		return false
	case Live:
		return c.offerLocked(r)
	}
	return false
}

// Start ends Starting: replay (the records of a resume, in seq order) is passed on, then
// every record above lastSeq. It returns true when a held record reveals a gap.
func (c *Cursor[T]) Start(lastSeq uint64, replay []T) (catchUp bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != Starting {
		return false
	}
	for _, r := range replay {
		c.deliver(r)
	}
	c.next = lastSeq + 1
	c.state = Live
	return c.releaseLocked()
}

// CaughtUp hands in the records read after a gap (the user's history after Next()-1).
// complete is false when the history no longer holds them: the cursor fails. It returns
// true when another gap remains.
func (c *Cursor[T]) CaughtUp(recs []T, complete bool) (catchUp bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != CatchingUp {
		return false
	}
	if !complete {
		c.failLocked()
		return false
	}
	c.state = Live
	for _, r := range recs {
		if c.seqOf(r) == c.next {
			c.deliver(r)
			c.next++
		}
	}
	return c.releaseLocked()
}

// Resync makes a live cursor catch up as if it had found a gap (the edge's log stream
// restarted from now and may have skipped records). It returns true when the owner must
// read the records after Next()-1 and call CaughtUp.
func (c *Cursor[T]) Resync() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != Live {
		return false
	}
	c.state = CatchingUp
	return true
}

// Fail marks the cursor failed: it passes nothing on any more.
func (c *Cursor[T]) Fail() {
	c.mu.Lock()
	c.failLocked()
	c.mu.Unlock()
}

func (c *Cursor[T]) failLocked() {
	c.state = Failed
	c.held = nil
}

func (c *Cursor[T]) holdLocked(r T) {
	if len(c.held) >= MaxHeld {
		c.failLocked()
		return
	}
	c.held = append(c.held, r)
}

// offerLocked handles a record while Live.
func (c *Cursor[T]) offerLocked(r T) bool {
	switch {
	case c.seqOf(r) < c.next:
		return false // already passed on
	case c.seqOf(r) == c.next:
		c.deliver(r)
		c.next++
		return false
	default:
		c.state = CatchingUp
		c.held = append(c.held[:0], r)
		return true
	}
}

// releaseLocked passes the held records on as Live would, in the order they came.
func (c *Cursor[T]) releaseLocked() bool {
	held := c.held
	c.held = nil
	for i, r := range held {
		if c.offerLocked(r) {
			// A gap: keep the rest held behind the record that revealed it.
			c.held = append(c.held, held[i+1:]...)
			return true
		}
	}
	return false
}
