// Package upstream keeps the edge's event streams open: one server-streaming StreamEvents
// call per service, each reopened with exponential backoff and jitter when it breaks, with
// a status per stream that the readiness endpoint reports.
//
// A stream counts as up once the service has sent its first message, the empty
// "subscribed" marker that shared/fanout.Serve sends once its bus subscription is active
// (see the fanout package doc), and until it breaks. Counting from the attempt instead
// would report ready while the service is not yet subscribed for this edge, and the events
// published in that window would be lost. Messages with no event (no oneof set), the
// marker included, are not handed on.
//
// A Set runs its streams on one goroutine each; Down, Status and Started may be called
// from any goroutine.
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
	"google.golang.org/protobuf/proto"
)

// ErrStreamEnded is the error of a stream the server ended without an error: the edge
// reopens it as it would a broken one, since it must never stop listening.
var ErrStreamEnded = errors.New("event stream ended by the server")

// Consume opens one server stream and hands every event to handle, in order, until the
// stream breaks or ctx ends. It always returns an error (ErrStreamEnded for a clean end,
// ctx.Err() once ctx is done).
//
// onOpen runs when the first message arrives: the service's subscribed marker, after
// which no event for this edge is lost. (A Connect server stream only returns from open
// with the server's first message, so the call being made proves nothing.) Messages with
// no oneof set are skipped: the marker, and events of a kind this edge does not know.
func Consume[Res any](ctx context.Context, open func(context.Context) (*connect.ServerStreamForClient[Res], error), onOpen func(), handle func(*Res)) error {
	stream, err := open(ctx)
	if err != nil {
		return err
	}
	defer stream.Close()
	first := true
	for stream.Receive() {
		msg := stream.Msg()
		if first {
			first = false
			onOpen()
		}
		if hasEvent(msg) {
			handle(msg)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := stream.Err(); err != nil {
		return err
	}
	return ErrStreamEnded
}

// hasEvent reports whether msg, a StreamEventsResponse, has its event oneof set. A message
// type without a oneof (not an event stream of this system) always counts as an event.
func hasEvent(msg any) bool {
	pm, ok := msg.(proto.Message)
	if !ok {
		return true
	}
	r := pm.ProtoReflect()
	oneofs := r.Descriptor().Oneofs()
	hasOneof := false
	for i := range oneofs.Len() {
		od := oneofs.Get(i)
		if od.IsSynthetic() { // a proto3 optional field, not a oneof of the schema
			continue
		}
		hasOneof = true
		if r.WhichOneof(od) != nil {
			return true
		}
	}
	return !hasOneof
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

// RunFunc runs one stream until it breaks: it calls opened once the stream is established
// (Consume: on the service's subscribed marker) and returns the error that ended it.
type RunFunc func(ctx context.Context, opened func()) error

type stream struct {
	name string
	run  RunFunc

	mu      sync.Mutex
	up      bool
	lastErr error
	opens   int
	// The current outage, for its log lines: when it began, the failed attempts so
	// far, and the last WARN about it.
	downSince, warned time.Time
	tries             int
}

// Set is the edge's streams.
type Set struct {
	backoff Backoff
	log     *slog.Logger
	streams []*stream

	started     chan struct{} // closed once every stream has been up
	startedOnce sync.Once
	mu          sync.Mutex
	neverUp     int // streams not up yet since Run started
}

// NewSet returns an empty Set.
func NewSet(b Backoff, log *slog.Logger) *Set {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Set{backoff: b, log: log, started: make(chan struct{})}
}

// Started is closed once every stream has been up at least once (it stays closed when a
// stream breaks later: Down tells the current state).
func (s *Set) Started() <-chan struct{} { return s.started }

// Add registers a stream; call before Run.
func (s *Set) Add(name string, run RunFunc) {
	s.streams = append(s.streams, &stream{name: name, run: run})
}

// Run keeps every stream open until ctx ends.
func (s *Set) Run(ctx context.Context) {
	s.mu.Lock()
	s.neverUp = len(s.streams)
	s.mu.Unlock()
	if len(s.streams) == 0 {
		s.startedOnce.Do(func() { close(s.started) })
	}
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

// stillBrokenEvery spaces the WARN lines of a long outage.
const stillBrokenEvery = time.Minute

// keep runs one stream for as long as ctx lasts. An outage is logged in a summary, not
// one WARN per attempt: a WARN when it begins (and once a minute while it lasts), the
// attempts themselves at DEBUG, and one INFO "reopened after N tries in D" at its end.
func (s *Set) keep(ctx context.Context, st *stream) {
	failures := 0
	for ctx.Err() == nil {
		start := time.Now()
		err := st.run(ctx, func() {
			st.mu.Lock()
			st.up, st.lastErr = true, nil
			st.opens++
			first := st.opens == 1
			tries, since := st.tries, st.downSince
			st.tries = 0
			st.mu.Unlock()
			if tries > 0 {
				s.log.Info("event stream reopened", "service", st.name, "tries", tries, "after", time.Since(since).Round(time.Millisecond))
			}
			if first {
				s.firstUp()
			}
		})
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) >= s.backoff.Reset {
			failures = 0
		}
		failures++
		wait := s.backoff.delay(failures)
		now := time.Now()
		st.mu.Lock()
		st.up, st.lastErr = false, err
		st.tries++
		tries := st.tries
		if tries == 1 {
			st.downSince = now
		}
		warn := tries == 1 || now.Sub(st.warned) >= stillBrokenEvery
		if warn {
			st.warned = now
		}
		since := st.downSince
		st.mu.Unlock()
		switch {
		case tries == 1:
			s.log.Warn("event stream broken; reopening", "service", st.name, "err", err, "retry_in", wait)
		case warn:
			s.log.Warn("event stream still broken; reopening", "service", st.name, "err", err, "tries", tries,
				"down_for", now.Sub(since).Round(time.Millisecond), "retry_in", wait)
		default:
			s.log.Debug("event stream reopen failed", "service", st.name, "err", err, "tries", tries, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// firstUp records that one more stream has been up, and closes started after the last.
func (s *Set) firstUp() {
	s.mu.Lock()
	s.neverUp--
	all := s.neverUp == 0
	s.mu.Unlock()
	if all {
		s.startedOnce.Do(func() { close(s.started) })
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
