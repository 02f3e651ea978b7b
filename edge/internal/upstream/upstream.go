// Package upstream keeps the edge's event streams open: one server-streaming StreamEvents
// call per service, each reopened with exponential backoff and jitter when it breaks, with
// a status per stream that the readiness endpoint reports.
//
// A Set runs its streams on one goroutine each; Down and Status may be called from any
// goroutine.
package upstream

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// ErrStreamEnded is the error of a stream the server ended without an error: the edge
// reopens it as it would a broken one, since it must never stop listening.
var ErrStreamEnded = errors.New("event stream ended by the server")

// Consume opens one server stream and hands every message to handle, in order, until the
// stream breaks or ctx ends. It always returns an error (ErrStreamEnded for a clean end,
// ctx.Err() once ctx is done).
//
// onOpen runs as the call is made, not when it is established: a Connect server stream
// only returns from open once the server sends its first message (the response headers go
// with it), and an event stream may stay silent for long. So a stream counts as open from
// its attempt until it fails; an unreachable service fails the attempt at once (and the
// readiness probe reports it as well).
func Consume[Res any](ctx context.Context, open func(context.Context) (*connect.ServerStreamForClient[Res], error), onOpen func(), handle func(*Res)) error {
	onOpen()
	stream, err := open(ctx)
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		handle(stream.Msg())
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := stream.Err(); err != nil {
		return err
	}
	return ErrStreamEnded
}

// Backoff bounds the delay between attempts to reopen a stream.
type Backoff struct {
	// Base is the first delay; each failure doubles it up to Max.
	Base, Max time.Duration
	// Reset: a stream that stayed open this long starts over from Base when it breaks.
	Reset time.Duration
}

// DefaultBackoff reopens quickly at first and at most every 10 s.
var DefaultBackoff = Backoff{Base: 100 * time.Millisecond, Max: 10 * time.Second, Reset: 30 * time.Second}

// delay returns the wait before attempt n (n ≥ 1 failures so far): half of the capped
// exponential plus a random half, so that many edges restarting at once do not reconnect
// in lockstep, yet no wait is close to zero.
func (b Backoff) delay(n int) time.Duration {
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + rand.N(half+1)
}

// RunFunc runs one stream until it breaks: it calls opened once the call is made and
// returns the error that ended it.
type RunFunc func(ctx context.Context, opened func()) error

type stream struct {
	name string
	run  RunFunc

	mu      sync.Mutex
	up      bool
	lastErr error
	opens   int
}

// Set is the edge's streams.
type Set struct {
	backoff Backoff
	log     *slog.Logger
	streams []*stream
}

// NewSet returns an empty Set.
func NewSet(b Backoff, log *slog.Logger) *Set {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Set{backoff: b, log: log}
}

// Add registers a stream; call before Run.
func (s *Set) Add(name string, run RunFunc) {
	s.streams = append(s.streams, &stream{name: name, run: run})
}

// Run keeps every stream open until ctx ends.
func (s *Set) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, st := range s.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.keep(ctx, st)
		}()
	}
	wg.Wait()
}

func (s *Set) keep(ctx context.Context, st *stream) {
	failures := 0
	for ctx.Err() == nil {
		start := time.Now()
		err := st.run(ctx, func() {
			st.mu.Lock()
			st.up, st.lastErr = true, nil
			st.opens++
			st.mu.Unlock()
		})
		if ctx.Err() != nil {
			return
		}
		st.mu.Lock()
		st.up, st.lastErr = false, err
		st.mu.Unlock()
		if time.Since(start) >= s.backoff.Reset {
			failures = 0
		}
		failures++
		wait := s.backoff.delay(failures)
		s.log.Warn("event stream broken; reopening", "service", st.name, "err", err, "retry_in", wait, "attempt", failures)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Status is the state of one stream.
type Status struct {
	Name  string
	Up    bool
	Err   error
	Opens int
}

// Status returns the state of every stream, in the order added.
func (s *Set) Status() []Status {
	out := make([]Status, 0, len(s.streams))
	for _, st := range s.streams {
		st.mu.Lock()
		out = append(out, Status{Name: st.name, Up: st.up, Err: st.lastErr, Opens: st.opens})
		st.mu.Unlock()
	}
	return out
}

// Down returns the names of the streams that are not open, sorted.
func (s *Set) Down() []string {
	var out []string
	for _, st := range s.Status() {
		if !st.Up {
			out = append(out, st.Name)
		}
	}
	slices.Sort(out)
	return out
}
