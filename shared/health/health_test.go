package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/charla/charla/shared/health"
	"github.com/charla/charla/shared/rpc"
)

// dependency is a fake database or bus that is up or down as the test says.
type dependency struct{ down atomic.Bool }

func (d *dependency) ping(context.Context) error {
	if d.down.Load() {
		return errors.New("connection refused")
	}
	return nil
}

// serve mounts h as a service process does and returns a gRPC health client (the gRPC
// protocol over cleartext HTTP/2, as Kubernetes' grpc probe speaks) and the base URL.
func serve(t *testing.T, h *health.Checker) (*grpchealth.Client, string) {
	t.Helper()
	mux := rpc.NewMuxChecked(h, rpc.Service{Name: "chat.v1.ChatService", Path: "/chat.v1.ChatService/", Handler: http.NotFoundHandler()})
	mux.Handle("GET /ready", h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(mux)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	base := "http://" + ln.Addr().String()
	return grpchealth.NewClient(rpc.NewHTTPClient(), base, connect.WithGRPC()), base
}

// probe returns what both probes say: the gRPC status of the whole process and of the
// chat service, and GET /ready's status code and reasons.
type probeResult struct {
	process, service grpchealth.Status
	ready            int
	reasons          map[string]string
}

func probe(t *testing.T, c *grpchealth.Client, base string) probeResult {
	t.Helper()
	ctx := context.Background()
	var r probeResult
	for _, p := range []struct {
		service string
		out     *grpchealth.Status
	}{{"", &r.process}, {"chat.v1.ChatService", &r.service}} {
		res, err := c.Check(ctx, &grpchealth.CheckRequest{Service: p.service})
		if err != nil {
			t.Fatalf("gRPC health check of %q: %v", p.service, err)
		}
		*p.out = res.Status
	}
	res, err := http.Get(base + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r.ready = res.StatusCode
	var body struct {
		Status  string            `json:"status"`
		Reasons map[string]string `json:"reasons"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("GET /ready body: %v", err)
	}
	r.reasons = body.Reasons
	return r
}

// TestTransitions walks the process through every state: each dependency going away and
// coming back by itself, then draining, which no recovery undoes.
func TestTransitions(t *testing.T) {
	t.Parallel()
	var db, bus dependency
	h := health.New("chat.v1.ChatService")
	h.Add("chatsvc database", db.ping)
	h.Add("bus", bus.ping)
	client, base := serve(t, h)

	steps := []struct {
		name       string
		act        func()
		serving    bool
		wantReason string // a key of /ready's reasons
	}{
		{"all up", func() {}, true, ""},
		{"database down", func() { db.down.Store(true) }, false, "chatsvc database"},
		{"database back", func() { db.down.Store(false) }, true, ""},
		{"bus down", func() { bus.down.Store(true) }, false, "bus"},
		{"bus back", func() { bus.down.Store(false) }, true, ""},
		{"draining", h.Drain, false, "process"},
		{"draining, dependencies up", func() {}, false, "process"},
	}
	for _, s := range steps {
		s.act()
		got := probe(t, client, base)
		want, wantCode := grpchealth.StatusServing, http.StatusOK
		if !s.serving {
			want, wantCode = grpchealth.StatusNotServing, http.StatusServiceUnavailable
		}
		if got.process != want || got.service != want || got.ready != wantCode {
			t.Errorf("%s: gRPC %v / %v, /ready %d; want %v and %d", s.name, got.process, got.service, got.ready, want, wantCode)
		}
		if s.wantReason != "" && got.reasons[s.wantReason] == "" {
			t.Errorf("%s: /ready reasons %v, want one for %q", s.name, got.reasons, s.wantReason)
		}
		if s.serving && len(got.reasons) > 0 {
			t.Errorf("%s: /ready reasons %v, want none", s.name, got.reasons)
		}
	}
	if !h.Draining() {
		t.Error("Draining() = false after Drain")
	}
}

func TestUnknownService(t *testing.T) {
	t.Parallel()
	client, _ := serve(t, health.New("chat.v1.ChatService"))
	_, err := client.Check(context.Background(), &grpchealth.CheckRequest{Service: "profile.v1.ProfileService"})
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("check of a service not served: %v, want not_found", err)
	}
}

// TestHungOrPanickingCheck: a check that never answers or panics makes the process
// NOT_SERVING instead of hanging or crashing the probe.
func TestHungOrPanickingCheck(t *testing.T) {
	t.Parallel()
	for name, check := range map[string]health.Check{
		"hung":     func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		"panicked": func(context.Context) error { panic("boom") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := health.New()
			h.Timeout = 50 * time.Millisecond
			h.Add("database", check)
			reasons := h.Status(context.Background())
			if reasons["database"] == "" {
				t.Errorf("Status() = %v, want the database named", reasons)
			}
			res, err := h.Check(context.Background(), &grpchealth.CheckRequest{})
			if err != nil || res.Status != grpchealth.StatusNotServing {
				t.Errorf("Check() = %v, %v; want NOT_SERVING", res, err)
			}
		})
	}
}

// next returns the next status a watch sends, failing on an error or the end of the stream.
func next(t *testing.T, events <-chan grpchealth.WatchEvent) grpchealth.Status {
	t.Helper()
	ev, ok := <-events
	if !ok {
		t.Fatal("watch ended")
	}
	if ev.Err != nil {
		t.Fatalf("watch: %v", ev.Err)
	}
	return ev.Response.Status
}

// TestWatch streams every transition: the status at once, the database going away and
// coming back (found by the periodic re-check), then draining.
func TestWatch(t *testing.T) {
	t.Parallel()
	var db dependency
	h := health.New("chat.v1.ChatService")
	h.WatchInterval = 5 * time.Millisecond
	h.Add("database", db.ping)
	client, _ := serve(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := client.Watch(ctx, &grpchealth.CheckRequest{Service: "chat.v1.ChatService"})
	if got := next(t, events); got != grpchealth.StatusServing {
		t.Fatalf("first status: got %v, want SERVING", got)
	}
	steps := []struct {
		name string
		act  func()
		want grpchealth.Status
	}{
		{"database down", func() { db.down.Store(true) }, grpchealth.StatusNotServing},
		{"database back", func() { db.down.Store(false) }, grpchealth.StatusServing},
		{"draining", h.Drain, grpchealth.StatusNotServing},
	}
	for _, s := range steps {
		s.act()
		// Only changes are sent: the next message is the new status.
		if got := next(t, events); got != s.want {
			t.Errorf("%s: got %v, want %v", s.name, got, s.want)
		}
	}
	cancel()
	for range events { // the client's goroutine ends with the stream
	}
}

// TestWatchSendsDrainAtOnce: a drain reaches a watcher without waiting for the next
// periodic check.
func TestWatchSendsDrainAtOnce(t *testing.T) {
	t.Parallel()
	h := health.New()
	h.WatchInterval = time.Hour
	client, _ := serve(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := client.Watch(ctx, &grpchealth.CheckRequest{})
	if got := next(t, events); got != grpchealth.StatusServing {
		t.Fatalf("first status: got %v, want SERVING", got)
	}
	h.Drain()
	if got := next(t, events); got != grpchealth.StatusNotServing {
		t.Errorf("after Drain: got %v, want NOT_SERVING", got)
	}
	cancel()
	for range events {
	}
}

func TestWatchUnknownService(t *testing.T) {
	t.Parallel()
	client, _ := serve(t, health.New("chat.v1.ChatService"))
	ev := <-client.Watch(context.Background(), &grpchealth.CheckRequest{Service: "profile.v1.ProfileService"})
	if connect.CodeOf(ev.Err) != connect.CodeNotFound {
		t.Errorf("watch of a service not served: %+v, want not_found", ev)
	}
}
