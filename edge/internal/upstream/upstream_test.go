package upstream

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
)

// flakyStream sends the subscribed marker and one event per call and then breaks the
// stream, for the first `breaks` calls; after that it sends them and stays open.
type flakyStream struct {
	presencev1connect.UnimplementedPresenceServiceHandler
	breaks int64
	calls  atomic.Int64
}

func (f *flakyStream) StreamEvents(ctx context.Context, req *connect.Request[presencev1.StreamEventsRequest], s *connect.ServerStream[presencev1.StreamEventsResponse]) error {
	n := f.calls.Add(1)
	if err := s.Send(&presencev1.StreamEventsResponse{}); err != nil {
		return err
	}
	ev := &presencev1.StreamEventsResponse{UserIds: []int64{n}, Event: &presencev1.StreamEventsResponse_Presence{Presence: &presencev1.PresenceEvent{UserId: n, IsOnline: true}}}
	if err := s.Send(ev); err != nil {
		return err
	}
	if n <= f.breaks {
		return connect.NewError(connect.CodeUnavailable, errors.New("broken on purpose"))
	}
	<-ctx.Done()
	return nil
}

func TestReconnectsAfterBreaks(t *testing.T) {
	t.Parallel()
	srv := &flakyStream{breaks: 3}
	mux := http.NewServeMux()
	mux.Handle(presencev1connect.NewPresenceServiceHandler(srv))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	client := presencev1connect.NewPresenceServiceClient(hs.Client(), hs.URL)

	var mu sync.Mutex
	var got []int64
	fourth := make(chan struct{})
	set := NewSet(Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond, Reset: time.Hour}, nil)
	set.Add("presence", func(ctx context.Context, opened func()) error {
		return Consume(ctx, func(ctx context.Context) (*connect.ServerStreamForClient[presencev1.StreamEventsResponse], error) {
			return client.StreamEvents(ctx, connect.NewRequest(&presencev1.StreamEventsRequest{EdgeId: "e1"}))
		}, opened, func(ev *presencev1.StreamEventsResponse) {
			mu.Lock()
			got = append(got, ev.GetPresence().GetUserId())
			if len(got) == 4 {
				close(fourth)
			}
			mu.Unlock()
		})
	})
	if down := set.Down(); len(down) != 1 {
		t.Errorf("before Run: got down %v, want [presence]", down)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { set.Run(ctx); close(done) }()
	<-fourth
	mu.Lock()
	if want := []int64{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("events: got %v, want %v (one per reopened stream, markers skipped)", got, want)
	}
	mu.Unlock()
	st := set.Status()[0]
	if st.Opens != 4 || !st.Up {
		t.Errorf("status: got %+v, want up after 4 opens", st)
	}
	if down := set.Down(); len(down) != 0 {
		t.Errorf("down: got %v, want none", down)
	}
	cancel()
	<-done
}

func TestDownWhileUnreachable(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(http.NotFoundHandler())
	url := hs.URL
	hs.Close() // nothing listens there any more
	client := presencev1connect.NewPresenceServiceClient(http.DefaultClient, url)
	// Each attempt records the status it finds: from the second on, the stream must be
	// down with the previous attempt's error.
	seen := make(chan Status, 100)
	set := NewSet(Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond, Reset: time.Hour}, nil)
	set.Add("presence", func(ctx context.Context, opened func()) error {
		select {
		case seen <- set.Status()[0]:
		default:
		}
		return Consume(ctx, func(ctx context.Context) (*connect.ServerStreamForClient[presencev1.StreamEventsResponse], error) {
			return client.StreamEvents(ctx, connect.NewRequest(&presencev1.StreamEventsRequest{EdgeId: "e1"}))
		}, opened, func(*presencev1.StreamEventsResponse) {})
	})
	if down := set.Down(); len(down) != 1 || down[0] != "presence" {
		t.Errorf("before Run: got down %v, want [presence]", down)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { set.Run(ctx); close(done) }()
	<-seen // the first attempt
	for i := 0; i < 3; i++ {
		if st := <-seen; st.Up || st.Err == nil {
			t.Errorf("status before retry %d: got %+v, want down with an error", i+1, st)
		}
	}
	cancel()
	<-done
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 50: time.Second} {
		for i := 0; i < 20; i++ {
			if d := b.delay(n); d < want/2 || d > want {
				t.Errorf("delay(%d): got %v, want within [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

// gatedStream holds each call before its subscribed marker until release is closed, then
// sends the marker, an event without a oneof (skipped) and one real event.
type gatedStream struct {
	presencev1connect.UnimplementedPresenceServiceHandler
	called  chan struct{}
	release chan struct{}
}

func (g *gatedStream) StreamEvents(ctx context.Context, req *connect.Request[presencev1.StreamEventsRequest], s *connect.ServerStream[presencev1.StreamEventsResponse]) error {
	g.called <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil
	}
	for _, ev := range []*presencev1.StreamEventsResponse{
		{},
		{UserIds: []int64{5}}, // no oneof: an event this edge does not know
		{UserIds: []int64{6}, Event: &presencev1.StreamEventsResponse_Presence{Presence: &presencev1.PresenceEvent{UserId: 6}}},
	} {
		if err := s.Send(ev); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// TestUpOnlyAfterTheMarker: a stream whose call is made but whose service has not yet
// subscribed (no marker) is down, and Started stays open; the marker makes it up.
func TestUpOnlyAfterTheMarker(t *testing.T) {
	t.Parallel()
	srv := &gatedStream{called: make(chan struct{}, 1), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle(presencev1connect.NewPresenceServiceHandler(srv))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	client := presencev1connect.NewPresenceServiceClient(hs.Client(), hs.URL)

	got := make(chan int64, 10)
	set := NewSet(DefaultBackoff, nil)
	set.Add("presence", func(ctx context.Context, opened func()) error {
		return Consume(ctx, func(ctx context.Context) (*connect.ServerStreamForClient[presencev1.StreamEventsResponse], error) {
			return client.StreamEvents(ctx, connect.NewRequest(&presencev1.StreamEventsRequest{EdgeId: "e1"}))
		}, opened, func(ev *presencev1.StreamEventsResponse) { got <- ev.GetUserIds()[0] })
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { set.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	<-srv.called // the call is made and held before the marker
	if down := set.Down(); !slices.Equal(down, []string{"presence"}) {
		t.Errorf("before the marker: got down %v, want [presence]", down)
	}
	select {
	case <-set.Started():
		t.Error("before the marker: Started is closed")
	default:
	}
	close(srv.release)
	<-set.Started()
	if down := set.Down(); len(down) != 0 {
		t.Errorf("after the marker: got down %v, want none", down)
	}
	if u := <-got; u != 6 {
		t.Errorf("first event handed on: got user %d, want 6 (the marker and the oneof-less event skipped)", u)
	}
}

func TestHasEvent(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		msg  any
		want bool
	}{
		"marker":        {&presencev1.StreamEventsResponse{}, false},
		"users only":    {&presencev1.StreamEventsResponse{UserIds: []int64{1}}, false},
		"event":         {&presencev1.StreamEventsResponse{Event: &presencev1.StreamEventsResponse_Presence{Presence: &presencev1.PresenceEvent{}}}, true},
		"no oneof type": {&presencev1.RegisterEdgeRequest{}, true},
		"not proto":     {&struct{}{}, true},
	} {
		if got := hasEvent(tc.msg); got != tc.want {
			t.Errorf("%s: got %v, want %v", name, got, tc.want)
		}
	}
}

// TestOutageLoggedInSummary: a stream that fails three attempts and then opens logs one
// WARN, the other attempts at DEBUG, and one INFO with the number of tries; not one WARN
// per attempt.
func TestOutageLoggedInSummary(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		recs []slog.Record
	)
	log := slog.New(handlerFunc(func(r slog.Record) {
		mu.Lock()
		defer mu.Unlock()
		recs = append(recs, r)
	}))
	set := NewSet(Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond, Reset: time.Hour}, log)
	var calls atomic.Int64
	set.Add("chat", func(ctx context.Context, opened func()) error {
		if calls.Add(1) <= 3 {
			return errors.New("connection refused")
		}
		opened()
		<-ctx.Done()
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		set.Run(ctx)
	}()
	<-set.Started()
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	var warns, debugs []string
	var reopened []slog.Record
	for _, r := range recs {
		switch {
		case r.Level == slog.LevelWarn:
			warns = append(warns, r.Message)
		case r.Level == slog.LevelDebug:
			debugs = append(debugs, r.Message)
		case r.Message == "event stream reopened":
			reopened = append(reopened, r)
		}
	}
	if got, want := warns, []string{"event stream broken; reopening"}; !slices.Equal(got, want) {
		t.Errorf("WARN lines: got %q, want %q", got, want)
	}
	if got := len(debugs); got != 2 {
		t.Errorf("DEBUG lines: got %d (%q), want 2", got, debugs)
	}
	if len(reopened) != 1 {
		t.Fatalf("reopened lines: got %d, want 1", len(reopened))
	}
	var tries int64
	reopened[0].Attrs(func(a slog.Attr) bool {
		if a.Key == "tries" {
			tries = a.Value.Int64()
		}
		return true
	})
	if tries != 3 {
		t.Errorf("reopened after %d tries, want 3", tries)
	}
}

// handlerFunc is a slog.Handler that hands every record to a function.
type handlerFunc func(slog.Record)

func (h handlerFunc) Enabled(context.Context, slog.Level) bool      { return true }
func (h handlerFunc) Handle(_ context.Context, r slog.Record) error { h(r); return nil }
func (h handlerFunc) WithAttrs([]slog.Attr) slog.Handler            { return h }
func (h handlerFunc) WithGroup(string) slog.Handler                 { return h }
