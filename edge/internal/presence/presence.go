// Package presence reports the edge and its connections to the presence service: it
// registers the edge's lease and renews it at a third of its length, records every
// connection as it opens (before its first frame is served, so that events route to it at
// once) and closes (after a grace period, so that a page reload does not flap online →
// offline → online; immediately on shutdown), and records every local connection again
// whenever the lease had to be registered anew.
//
// Reporter is safe for concurrent use.
package presence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
)

// Client is the part of the presence service the edge uses.
type Client interface {
	RegisterEdge(context.Context, *connect.Request[presencev1.RegisterEdgeRequest]) (*connect.Response[presencev1.RegisterEdgeResponse], error)
	Heartbeat(context.Context, *connect.Request[presencev1.HeartbeatRequest]) (*connect.Response[presencev1.HeartbeatResponse], error)
	Connect(context.Context, *connect.Request[presencev1.ConnectRequest]) (*connect.Response[presencev1.ConnectResponse], error)
	Disconnect(context.Context, *connect.Request[presencev1.DisconnectRequest]) (*connect.Response[presencev1.DisconnectResponse], error)
}

// Conn is a local connection as the reporter knows it.
type Conn struct {
	UserID int64
	ConnID string
}

// NewEdgeID returns a random edge id, valid as a bus subject token ([A-Za-z0-9_-]).
func NewEdgeID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "edge-" + hex.EncodeToString(b)
}

// Options configure a Reporter.
type Options struct {
	// EdgeID identifies this edge process.
	EdgeID string
	// Grace is how long a closed connection still counts before Disconnect is sent.
	Grace time.Duration
	// CallTimeout bounds every call.
	CallTimeout time.Duration
	// Local lists the edge's live connections, for re-recording them after a new lease.
	Local func() []Conn
	Log   *slog.Logger
}

// Reporter reports to the presence service.
type Reporter struct {
	c   Client
	opt Options

	registered chan struct{} // closed once the first lease is held
	regOnce    sync.Once

	mu       sync.Mutex
	pending  map[string]delayed // delayed disconnects by connection id
	stopping bool
	inflight sync.WaitGroup
}

// New returns a Reporter.
func New(c Client, o Options) *Reporter {
	if o.Grace < 0 {
		o.Grace = 0
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Local == nil {
		o.Local = func() []Conn { return nil }
	}
	return &Reporter{c: c, opt: o, registered: make(chan struct{}), pending: make(map[string]delayed)}
}

// EdgeID returns the edge's id.
func (r *Reporter) EdgeID() string { return r.opt.EdgeID }

// Registered is closed once the edge holds its first lease.
func (r *Reporter) Registered() <-chan struct{} { return r.registered }

// Run registers the edge and keeps its lease until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		lease, err := r.register(ctx)
		if err != nil {
			r.opt.Log.Warn("register edge", "err", err, "retry_in", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		r.regOnce.Do(func() { close(r.registered) })
		// Every local connection is recorded again: after a lost lease the presence
		// service dropped them; on the first lease, connections that arrived before it
		// could not be recorded.
		r.reconnectAll(ctx)
		r.heartbeat(ctx, lease)
	}
}

func (r *Reporter) register(ctx context.Context) (time.Duration, error) {
	cctx, cancel := context.WithTimeout(ctx, r.opt.CallTimeout)
	defer cancel()
	res, err := r.c.RegisterEdge(cctx, connect.NewRequest(&presencev1.RegisterEdgeRequest{EdgeId: r.opt.EdgeID}))
	if err != nil {
		return 0, err
	}
	lease := time.Duration(res.Msg.GetLeaseMs()) * time.Millisecond
	if lease <= 0 {
		lease = 30 * time.Second
	}
	r.opt.Log.Info("edge registered", "lease", lease)
	return lease, nil
}

// heartbeat renews the lease every third of it; it returns when the lease is lost
// (not_found) or ctx ends. Other failures are retried at the next tick: the lease
// outlives two missed beats.
func (r *Reporter) heartbeat(ctx context.Context, lease time.Duration) {
	t := time.NewTicker(lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, min(r.opt.CallTimeout, lease/3))
		_, err := r.c.Heartbeat(cctx, connect.NewRequest(&presencev1.HeartbeatRequest{EdgeId: r.opt.EdgeID}))
		cancel()
		if connect.CodeOf(err) == connect.CodeNotFound {
			r.opt.Log.Warn("edge lease lost; registering again")
			return
		}
		if err != nil && ctx.Err() == nil {
			r.opt.Log.Warn("heartbeat", "err", err)
		}
	}
}

func (r *Reporter) reconnectAll(ctx context.Context) {
	for _, c := range r.opt.Local() {
		if ctx.Err() != nil {
			return
		}
		if err := r.connect(ctx, c); err != nil {
			r.opt.Log.Warn("record connection", "user_id", c.UserID, "err", err)
		}
	}
}

func (r *Reporter) connect(ctx context.Context, c Conn) error {
	cctx, cancel := context.WithTimeout(ctx, r.opt.CallTimeout)
	defer cancel()
	_, err := r.c.Connect(cctx, connect.NewRequest(&presencev1.ConnectRequest{EdgeId: r.opt.EdgeID, UserId: c.UserID, ConnectionId: c.ConnID}))
	return err
}

// Connected records a new connection. It waits (up to the call timeout) for the edge's
// first lease, so that a connection accepted during start-up is routed as soon as
// possible. A failure is logged and not fatal: the connection stays up, and is recorded
// again whenever the lease is registered anew.
func (r *Reporter) Connected(ctx context.Context, c Conn) {
	r.mu.Lock()
	if d, ok := r.pending[c.ConnID]; ok && d.t.Stop() { // cannot happen with unique ids; be safe
		delete(r.pending, c.ConnID)
		r.inflight.Done()
	}
	r.mu.Unlock()
	select {
	case <-r.registered: // the common case: no timer
	default:
		t := time.NewTimer(r.opt.CallTimeout)
		select {
		case <-r.registered:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			r.opt.Log.Warn("connection accepted before the edge holds a lease", "user_id", c.UserID)
			return // recorded by reconnectAll once the lease is held
		}
	}
	if err := r.connect(ctx, c); err != nil {
		r.opt.Log.Warn("record connection", "user_id", c.UserID, "err", err)
	}
}

// Disconnected records a closed connection after the grace period (at once when the edge
// is stopping).
func (r *Reporter) Disconnected(c Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping || r.opt.Grace == 0 {
		r.inflight.Add(1)
		go func() {
			defer r.inflight.Done()
			r.disconnect(c)
		}()
		return
	}
	r.inflight.Add(1)
	r.pending[c.ConnID] = delayed{c: c, t: time.AfterFunc(r.opt.Grace, func() {
		defer r.inflight.Done()
		r.mu.Lock()
		delete(r.pending, c.ConnID)
		r.mu.Unlock()
		r.disconnect(c)
	})}
}

// delayed is a disconnect waiting for its grace period.
type delayed struct {
	c Conn
	t *time.Timer
}

func (r *Reporter) disconnect(c Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opt.CallTimeout)
	defer cancel()
	if _, err := r.c.Disconnect(ctx, connect.NewRequest(&presencev1.DisconnectRequest{EdgeId: r.opt.EdgeID, UserId: c.UserID, ConnectionId: c.ConnID})); err != nil {
		// The lease expiring takes the connection with it; nothing is lost for good.
		r.opt.Log.Warn("record disconnection", "user_id", c.UserID, "err", err)
	}
}

// Stop sends every delayed disconnect now and makes later ones immediate. The edge calls
// it when shutting down, before closing its connections; Wait then waits for the calls.
func (r *Reporter) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopping = true
	for id, d := range r.pending {
		delete(r.pending, id)
		if d.t.Stop() {
			// The timer's func will not run: do its work here; it balances the Add.
			go func() {
				defer r.inflight.Done()
				r.disconnect(d.c)
			}()
		}
	}
}

// Wait waits until every disconnect has been sent, or ctx ends.
func (r *Reporter) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
