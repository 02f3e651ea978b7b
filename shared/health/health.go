// Package health tells whether a process can do its work now: every dependency it needs
// answers (its database, the bus) and it is not draining. One Checker answers both the
// gRPC health checks of connectrpc.com/grpchealth (Kubernetes grpc probes, grpcurl,
// load balancers) and GET /ready (HTTP probes).
//
// Checks run when asked, concurrently, each bounded by Timeout: a dependency that comes
// back makes the next probe SERVING again, with nothing to reset. Drain is one way: a
// process that started shutting down stays NOT_SERVING.
//
// The gRPC Watch call streams the status as it changes: the checks run again every
// WatchInterval for as long as a watch lasts (one goroutine per watch, ended with it), and
// Drain is sent at once.
//
// A Checker is safe for concurrent use.
package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
)

// DefaultTimeout bounds each check when Checker.Timeout is zero: a probe must answer
// before the prober (Kubernetes: 1 s by default, raised to 3 s in deploy/k8s) gives up.
const DefaultTimeout = 2 * time.Second

// DefaultWatchInterval is how often a gRPC Watch re-runs the checks when
// Checker.WatchInterval is zero.
const DefaultWatchInterval = 5 * time.Second

// Check reports whether one dependency answers; it should honour ctx's deadline.
type Check func(ctx context.Context) error

// Checker holds a process's checks.
type Checker struct {
	// Timeout bounds each check; zero means DefaultTimeout.
	Timeout time.Duration
	// WatchInterval is how often a gRPC Watch re-runs the checks; zero means
	// DefaultWatchInterval.
	WatchInterval time.Duration

	services  []string
	mu        sync.Mutex
	checks    []namedCheck
	draining  atomic.Bool
	drained   chan struct{} // closed by Drain; made on first use, under mu
	drainOnce sync.Once
}

type namedCheck struct {
	name  string
	check Check
}

// New returns a Checker that answers gRPC health checks for the whole process ("") and for
// each of services (fully qualified names, as in chatv1connect.ChatServiceName).
func New(services ...string) *Checker {
	return &Checker{services: services}
}

// Add registers a check under name ("database", "bus"); a failed check names it in /ready.
func (c *Checker) Add(name string, check Check) {
	c.mu.Lock()
	c.checks = append(c.checks, namedCheck{name, check})
	c.mu.Unlock()
}

// Drain marks the process as shutting down: from now on every answer is NOT_SERVING / 503,
// so load balancers stop sending new work while the process finishes the current work.
func (c *Checker) Drain() {
	c.draining.Store(true)
	ch := c.drainedChan()
	c.drainOnce.Do(func() { close(ch) })
}

// drainedChan returns the channel Drain closes, for the watches to wait on.
func (c *Checker) drainedChan() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drained == nil {
		c.drained = make(chan struct{})
	}
	return c.drained
}

// Draining reports whether Drain was called.
func (c *Checker) Draining() bool { return c.draining.Load() }

// Status runs every check and returns why the process cannot serve, by check name ("draining"
// when it is), or an empty map when it can.
func (c *Checker) Status(ctx context.Context) map[string]string {
	reasons := map[string]string{}
	if c.draining.Load() {
		reasons["process"] = "draining"
	}
	c.mu.Lock()
	checks := slices.Clone(c.checks)
	c.mu.Unlock()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, nc := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := run(cctx, nc.check); err != nil {
				mu.Lock()
				reasons[nc.name] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return reasons
}

// run calls check, turning a panic into an error: a probe must answer.
func run(ctx context.Context, check Check) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check panicked: %v", r)
		}
	}()
	return check(ctx)
}

// Check answers a gRPC health check (grpchealth.Checker): SERVING when Status finds
// nothing wrong, NOT_SERVING otherwise; NotFound for a service this process does not serve.
func (c *Checker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if err := c.known(req.Service); err != nil {
		return nil, err
	}
	if len(c.Status(ctx)) > 0 {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}

// known returns NotFound for a service this process does not serve.
func (c *Checker) known(service string) error {
	if service != "" && !slices.Contains(c.services, service) {
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q: this process serves %v", service, c.services))
	}
	return nil
}

// Watch serves the gRPC health Watch call (grpchealth.Watcher): grpchealth sends the
// status at once, then calls onChange's check again at every WatchInterval and when Drain
// is called, and sends the status each time it differs from the last one sent. The watch's
// goroutine ends when stop returns. A service this process does not serve is NotFound.
func (c *Checker) Watch(_ context.Context, req *grpchealth.CheckRequest, onChange func()) (stop func(), err error) {
	if err := c.known(req.Service); err != nil {
		return nil, err
	}
	interval := c.WatchInterval
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	drained := c.drainedChan()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-drained:
				drained = nil // one notice is enough: draining is for good
				onChange()
			case <-t.C:
				onChange()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}, nil
}

var _ grpchealth.Watcher = (*Checker)(nil)

// ServeHTTP answers GET /ready: 200 {"status":"ready"}, or 503
// {"status":"unavailable","reasons":{"database":"...","process":"draining"}}.
func (c *Checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reasons := c.Status(r.Context())
	status, body := http.StatusOK, map[string]any{"status": "ready"}
	if len(reasons) > 0 {
		status, body = http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reasons": reasons}
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
