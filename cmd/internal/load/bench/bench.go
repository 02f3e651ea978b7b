// Package bench runs the load tool's three modes against a Target: idle (connections held
// at rising levels: handshakes per second, server memory per connection), storm (clients
// dropped and reconnecting at once: time until all are back) and chat (sender→recipient
// pairs at an open-loop fixed total rate, one phase per rate: latency, loss, CPU).
//
// Concurrency: a mode owns its connections and closes them (waiting for their readers)
// before it returns; counters shared with reader goroutines are atomics or mutex-guarded.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/charla/charla/cmd/internal/load/client"
	"github.com/charla/charla/cmd/internal/load/procfs"
	"github.com/charla/charla/cmd/internal/load/provision"
)

// Target is a system under load: its edges, its processes and how to provision users.
type Target struct {
	// Name labels the target in progress lines ("relay", "charla").
	Name string
	// Edges are WebSocket URLs of the edges' /ws endpoints (ws://127.0.0.1:8080/ws).
	Edges []string
	// PIDs are the server's processes; their RSS and CPU are summed.
	PIDs []int
	// DBPIDs are the database server's processes (CPU only); may be empty.
	DBPIDs []int
	// Prov creates users, sessions and contacts.
	Prov provision.Provisioner
}

// URL returns the WebSocket URL of edge i (modulo the number of edges) with a token.
func (t *Target) URL(i int, token string) string {
	return t.Edges[i%len(t.Edges)] + "?token=" + url.QueryEscape(token)
}

// Sample reads the summed RSS and CPU of the server's processes and the CPU of the
// database's.
func (t *Target) Sample() (server, db procfs.Sample, err error) {
	if server, err = procfs.Read(t.PIDs); err != nil {
		return server, db, fmt.Errorf("%s: %w", t.Name, err)
	}
	if db, err = procfs.Read(t.DBPIDs); err != nil {
		return server, db, fmt.Errorf("%s database: %w", t.Name, err)
	}
	return server, db, nil
}

// Options are shared by every mode.
type Options struct {
	// Dialer opens the connections.
	Dialer *client.Dialer
	// Concurrency is how many handshakes run at once while ramping up.
	Concurrency int
	// Settle is the pause before memory is read and before a chat starts, so the server
	// finishes what connecting set off (presence, GC).
	Settle time.Duration
	// Progress receives one line per step, stamped with the time since Start; may be nil.
	Progress io.Writer
	// Start is when the run began.
	Start time.Time
}

func (o *Options) logf(t *Target, format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "%6.1fs [%s] "+format+"\n", append([]any{time.Since(o.Start).Seconds(), t.Name}, args...)...)
	}
}

// connector dials connections of a target, waiting for the first frame when the server
// sends one on connect (protocol v2's CONNECTED), so a handshake counts only once the
// server is ready to serve the connection.
type connector struct {
	opts      *Options
	target    *Target
	waitFirst bool

	mu       sync.Mutex
	failures map[string]int // failed attempts by kind since the last takeFailures
}

// failed counts a failed attempt by its kind: "HTTP <status>", "no CONNECTED" or "network".
func (c *connector) failed(err error) {
	kind := "network"
	var se *client.StatusError
	switch {
	case errors.As(err, &se):
		kind = fmt.Sprintf("HTTP %d", se.Status)
	case errors.Is(err, errNoFirstFrame):
		kind = "no CONNECTED"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures == nil {
		c.failures = map[string]int{}
	}
	c.failures[kind]++
}

// takeFailures returns the failures counted so far and starts over.
func (c *connector) takeFailures() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.failures
	c.failures = nil
	return f
}

var errNoFirstFrame = errors.New("no first frame (CONNECTED) in time")

// firstFrameWait bounds how long a v2 connection may take to send CONNECTED.
const firstFrameWait = 15 * time.Second

// newConnector probes the target with one connection: if a frame arrives within
// firstFrameWait of the handshake (protocol v2's CONNECTED comes at once, unless the
// server is struggling), every later connection waits for its first frame too.
func newConnector(ctx context.Context, opts *Options, t *Target, probe provision.User) (*connector, error) {
	c := &connector{opts: opts, target: t}
	conn, err := opts.Dialer.Dial(ctx, -1, t.URL(0, probe.Token), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: probe connection: %w", t.Name, err)
	}
	select {
	case <-conn.First():
		c.waitFirst = conn.Err() == nil
	case <-time.After(firstFrameWait):
	}
	conn.Close(true)
	return c, nil
}

// maxAttempts bounds the handshakes tried for one connection (about 30 s of backoff).
const maxAttempts = 20

// dial opens connection id for user u on edge edge, retrying refusals and errors with
// jittered backoff, at most maxAttempts times and until ctx ends. It returns how many
// attempts failed.
func (c *connector) dial(ctx context.Context, id, edge int, u provision.User, h client.Handler) (*client.Conn, int, error) {
	return c.dialURL(ctx, id, c.target.URL(edge, u.Token), h)
}

// dialURL is dial to a WebSocket URL with its token (and any other query) already on it.
func (c *connector) dialURL(ctx context.Context, id int, url string, h client.Handler) (*client.Conn, int, error) {
	backoff := 50 * time.Millisecond
	for failures := 0; ; failures++ {
		conn, err := c.opts.Dialer.Dial(ctx, id, url, h)
		if err == nil && c.waitFirst {
			select {
			case <-conn.First():
				err = conn.Err()
			case <-time.After(firstFrameWait):
				err = errNoFirstFrame
			case <-ctx.Done():
				err = ctx.Err()
			}
			if err != nil {
				conn.Close(false)
			}
		}
		if err == nil {
			return conn, failures, nil
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, failures, fmt.Errorf("connection %d: %w", id, err)
		}
		c.failed(err)
		if ctx.Err() != nil {
			return nil, failures, fmt.Errorf("connection %d: %w (last error: %v)", id, ctx.Err(), err)
		}
		if failures+1 >= maxAttempts {
			return nil, failures + 1, fmt.Errorf("connection %d: %d attempts failed, the last: %w", id, maxAttempts, err)
		}
		select {
		case <-time.After(backoff/2 + rand.N(backoff)):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// dialMany opens conns[from:to] concurrently, connection i for users[i/perUser] on edge i.
func (c *connector) dialMany(ctx context.Context, conns []*client.Conn, from, to int, users []provision.User, perUser int, h client.Handler) (failures int, err error) {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(c.opts.Concurrency, 1))
	for i := from; i < to; i++ {
		g.Go(func() error {
			conn, f, err := c.dial(gctx, i, i, users[i/perUser], h)
			mu.Lock()
			failures += f
			mu.Unlock()
			conns[i] = conn
			return err
		})
	}
	return failures, g.Wait()
}

// closeAll drops every open connection and waits for their readers.
func closeAll(conns []*client.Conn) {
	var wg sync.WaitGroup
	for _, c := range conns {
		if c != nil {
			wg.Go(func() { c.Close(false) })
		}
	}
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
