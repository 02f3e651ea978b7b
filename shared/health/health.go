// Package health tells whether a process can do its work now: every dependency it needs
// answers (its database, the bus) and it is not draining. One Checker answers both the
// gRPC health checks of connectrpc.com/grpchealth (Kubernetes grpc probes, grpcurl,
// load balancers) and GET /ready (HTTP probes).
//
// Checks run when asked, concurrently, each bounded by Timeout: a dependency that comes
// back makes the next probe SERVING again, with nothing to reset. Drain is one way: a
// process that started shutting down stays NOT_SERVING.
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

// Check reports whether one dependency answers; it should honour ctx's deadline.
type Check func(ctx context.Context) error

// Checker holds a process's checks.
type Checker struct {
	// Timeout bounds each check; zero means DefaultTimeout.
	Timeout time.Duration

	services []string
	mu       sync.Mutex
	checks   []namedCheck
	draining atomic.Bool
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
func (c *Checker) Drain() { c.draining.Store(true) }

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
	if req.Service != "" && !slices.Contains(c.services, req.Service) {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q: this process serves %v", req.Service, c.services))
	}
	if len(c.Status(ctx)) > 0 {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}

var _ grpchealth.Checker = (*Checker)(nil)

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
