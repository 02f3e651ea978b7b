// Package presence reports the edge and its connections to the presence service: it
// registers the edge's lease and renews it, records every connection as it opens (before
// its first frame is served, so that events route to it at once) and as it closes (after a
// grace period, so that a page reload or a move to another edge does not flap online →
// offline → online; on shutdown too, bounded by the drain), and records whatever a failed
// call left unrecorded again once the presence service answers.
//
// # The lease
//
// The lease (15 s by default) is renewed every fifth of its length, each beat bounded by
// that interval: after a beat that landed, three more may fail and the fourth still lands
// with an interval to spare, so a presence service or database away for up to nine seconds
// does not cost the lease. A lost lease (not_found) is registered anew; the presence
// service keeps the connections a re-registering edge still holds, and the reporter
// records them all again in case they were dropped meanwhile.
//
// # Batched Connects
//
// Connects go out through a coalesce.Batcher as ConnectMany calls: the connections that
// open while one call is in flight go out together in the next, so a burst of handshakes
// shares a few calls (and, on the presence service, a few commits). Each connection still
// gets its own outcome, an error exactly as Connect would have answered it. A presence
// service too old to know ConnectMany (unimplemented, during a rolling upgrade) is sent
// one Connect per connection for a minute (singleRetry), then ConnectMany is tried again:
// the replicas answering may have been upgraded meanwhile.
//
// # Batched Disconnects
//
// A closed connection's Disconnect goes out, once its grace period ends, through a second
// batcher as DisconnectMany calls, submitted without waiting (coalesce.Batcher.Submit):
// when an edge's connections all close at once (the edge or the network restarting, a
// reconnection storm), the reporter holds no goroutine per connection and presence gets a
// few calls and commits. One Disconnect per connection went out side by side before; at
// 19,000 connections that was 19,000 concurrent calls, for which the HTTP/2 client dialed
// thousands of extra connections, and 60,000 goroutines whose descriptors the Go runtime
// keeps for good (charla-load -modes idle). A presence service without DisconnectMany is
// sent one Disconnect per connection for a while, as for ConnectMany.
//
// # Calls that fail
//
// The reporter keeps every connection it has seen until the presence service has its
// Disconnect. A Connect or Disconnect that fails (the service or its database away) is
// owed: after the next beat that lands, every owed call is made again. The calls of one
// connection are serialized, and a closed connection is never recorded again, so a late
// Connect can never follow its Disconnect and leave a ghost online.
//
// Reporter is safe for concurrent use.
package presence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/edge/internal/coalesce"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/rpc"
)

// Client is the part of the presence service the edge uses.
type Client interface {
	RegisterEdge(context.Context, *connect.Request[presencev1.RegisterEdgeRequest]) (*connect.Response[presencev1.RegisterEdgeResponse], error)
	Heartbeat(context.Context, *connect.Request[presencev1.HeartbeatRequest]) (*connect.Response[presencev1.HeartbeatResponse], error)
	Connect(context.Context, *connect.Request[presencev1.ConnectRequest]) (*connect.Response[presencev1.ConnectResponse], error)
	ConnectMany(context.Context, *connect.Request[presencev1.ConnectManyRequest]) (*connect.Response[presencev1.ConnectManyResponse], error)
	Disconnect(context.Context, *connect.Request[presencev1.DisconnectRequest]) (*connect.Response[presencev1.DisconnectResponse], error)
	DisconnectMany(context.Context, *connect.Request[presencev1.DisconnectManyRequest]) (*connect.Response[presencev1.DisconnectManyResponse], error)
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

// MaxConnectMany bounds the connections of one ConnectMany call, as presence.v1 does.
const MaxConnectMany = 256

// MaxDisconnectMany bounds the connections of one DisconnectMany call, as presence.v1 does.
const MaxDisconnectMany = 256

// singleRetry is how long the reporter sends one Connect (Disconnect) per connection after
// ConnectMany (DisconnectMany) answered unimplemented, before it tries the batch call again.
const singleRetry = time.Minute

// BeatsPerLease is how many heartbeats a lease length holds: the lease outlives
// BeatsPerLease-2 missed beats with one interval to spare.
const BeatsPerLease = 5

// Options configure a Reporter.
type Options struct {
	// EdgeID identifies this edge process.
	EdgeID string
	// Grace is how long a closed connection still counts before Disconnect is sent.
	Grace time.Duration
	// CallTimeout bounds every call.
	CallTimeout time.Duration
	// Local is not used any more: the reporter knows the live connections from Connected
	// and Disconnected. It is kept so that callers setting it still compile.
	//
	// Deprecated: leave it nil.
	Local func() []Conn
	// Log receives failed calls and lease changes.
	Log *slog.Logger

	// after, when set (by tests), replaces time.After for the heartbeat schedule.
	after func(time.Duration) <-chan time.Time
}

// Reporter reports to the presence service.
type Reporter struct {
	c   Client
	opt Options

	registered chan struct{} // closed once the first lease is held
	regOnce    sync.Once

	mu    sync.Mutex
	conns map[string]*conn // every connection whose Disconnect presence has not had yet
	owed  bool             // a call failed: some connection's state must be sent again
	kick  chan struct{}    // wakes the resync loop (capacity 1)

	inflight sync.WaitGroup // delayed and running disconnects

	// connects gathers the Connects of concurrent handshakes into ConnectMany calls.
	connects *coalesce.Batcher[connectCall, *presencev1.ConnectResponse]
	// singleUntil is when (Unix milliseconds) ConnectMany is tried again after presence
	// answered it with unimplemented (an older service); until then every connection gets
	// a Connect of its own. 0 as long as ConnectMany has worked.
	singleUntil atomic.Int64

	// disconnects gathers the Disconnects of closed connections into DisconnectMany calls;
	// singleDisconnectUntil is singleUntil's counterpart for DisconnectMany.
	disconnects           *coalesce.Batcher[*presencev1.DisconnectRequest, *presencev1.DisconnectResponse]
	singleDisconnectUntil atomic.Int64
}

// connectCall is one connection's Connect waiting for a batch.
type connectCall struct {
	// ctx is the caller's, bounded by the call timeout: once it ends before the batch is
	// sent, the connection is left out (and owed). It is not the batcher's context: the
	// batcher must not give up on a connection already sent (see record).
	ctx context.Context
	req *presencev1.ConnectRequest
}

// conn is one connection's state as far as presence is concerned.
type conn struct {
	Conn
	// mu serializes the connection's calls: a Disconnect waits for a Connect in flight.
	mu sync.Mutex
	// closed is set when the socket closes; from then on only Disconnect is sent.
	closed atomic.Bool
	// recorded tells (under mu) that presence has the connection, as far as known.
	recorded bool
	// connecting tells (under mu) that Connected will record the connection itself, asking
	// for the user's last seq: a resync that finds it meanwhile leaves it alone rather than
	// record it without the seq (which would cost the edge a ReadUserEvents).
	connecting bool
	// timer is the pending grace period (under Reporter.mu); nil once it fired or when
	// there is none.
	timer *time.Timer
	// releaseFailed tells (under Reporter.mu) that the Disconnect failed and is owed.
	releaseFailed bool
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
	if o.after == nil {
		o.after = time.After
	}
	r := &Reporter{
		c: c, opt: o, registered: make(chan struct{}),
		conns: make(map[string]*conn), kick: make(chan struct{}, 1),
	}
	// The batchers' goroutines live only while calls are queued: nothing to stop.
	r.connects = coalesce.New(r.connectBatch, coalesce.Options{Max: MaxConnectMany, Name: "record connections"})
	r.disconnects = coalesce.New(r.disconnectBatch, coalesce.Options{Max: MaxDisconnectMany, Name: "record disconnections"})
	return r
}

// EdgeID returns the edge's id.
func (r *Reporter) EdgeID() string { return r.opt.EdgeID }

// Registered is closed once the edge holds its first lease.
func (r *Reporter) Registered() <-chan struct{} { return r.registered }

// Run registers the edge and keeps its lease until ctx ends. It also makes the calls that
// failed again (see the package doc).
func (r *Reporter) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.resyncLoop(ctx)
	}()
	defer wg.Wait()
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
		// Every live connection is recorded again: after a lost lease the presence service
		// may have dropped them; on the first lease, connections that arrived before it
		// could not be recorded. Asked for before Registered says the edge is registered,
		// so that whoever waits for it finds that resync already owed.
		r.forgetRecorded()
		r.regOnce.Do(func() { close(r.registered) })
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

// heartbeat renews the lease every lease/BeatsPerLease, each beat bounded by that interval;
// it returns when the lease is lost (not_found) or ctx ends. Other failures are retried at
// the next beat. A beat that lands after failed calls triggers their retry.
func (r *Reporter) heartbeat(ctx context.Context, lease time.Duration) {
	interval := lease / BeatsPerLease
	failed := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.opt.after(interval):
		}
		cctx, cancel := context.WithTimeout(ctx, min(r.opt.CallTimeout, interval))
		_, err := r.c.Heartbeat(cctx, connect.NewRequest(&presencev1.HeartbeatRequest{EdgeId: r.opt.EdgeID}))
		cancel()
		switch {
		case connect.CodeOf(err) == connect.CodeNotFound:
			r.opt.Log.Warn("edge lease lost; registering again", "missed_beats", failed)
			return
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			failed++
			r.opt.Log.Warn("heartbeat", "err", err, "missed_beats", failed)
		default:
			if failed > 0 {
				r.opt.Log.Info("heartbeat back", "missed_beats", failed)
			}
			failed = 0
			r.mu.Lock()
			owed := r.owed
			r.mu.Unlock()
			if owed {
				r.wake()
			}
		}
	}
}

// forgetRecorded marks every live connection as not recorded, and wakes the resync loop to
// record them.
func (r *Reporter) forgetRecorded() {
	r.mu.Lock()
	cs := make([]*conn, 0, len(r.conns))
	for _, c := range r.conns {
		cs = append(cs, c)
	}
	r.owed = true
	r.mu.Unlock()
	for _, c := range cs {
		c.mu.Lock()
		c.recorded = false
		c.mu.Unlock()
	}
	r.wake()
}

func (r *Reporter) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// resyncLoop makes the owed calls whenever woken, until ctx ends.
func (r *Reporter) resyncLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		r.resync(ctx)
	}
}

// resync records every live connection presence may not have, and sends the Disconnects
// that failed. What fails again stays owed.
func (r *Reporter) resync(ctx context.Context) {
	r.mu.Lock()
	r.owed = false
	cs := make([]*conn, 0, len(r.conns))
	for _, c := range r.conns {
		// A closed connection is owed only a Disconnect that failed; one waiting for its
		// grace period, or being disconnected now, is not owed anything.
		if !c.closed.Load() || c.releaseFailed {
			c.releaseFailed = false
			cs = append(cs, c)
		}
	}
	r.mu.Unlock()
	// Records go out side by side (up to MaxConnectMany at once), so that the batcher
	// gathers them into full ConnectMany calls: after a lost lease every connection of the
	// edge is recorded again. Each connection's calls stay serialized by its mutex.
	slots := make(chan struct{}, MaxConnectMany)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, c := range cs {
		if ctx.Err() != nil {
			return
		}
		if c.closed.Load() {
			wg.Add(1)
			r.release(c, wg.Done)
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			c.mu.Lock()
			defer c.mu.Unlock()
			if !c.connecting { // else its handshake records it, asking for the last seq
				r.record(ctx, c, false)
			}
		})
	}
}

// markOwed notes a call to make again after the next beat that lands.
func (r *Reporter) markOwed() {
	r.mu.Lock()
	r.owed = true
	r.mu.Unlock()
}

// record sends the connection's Connect unless it is closed or already recorded. With
// wantLastSeq it asks presence for the user's newest event seq too, and returns it when
// the call landed and presence could read it. Called with c.mu held.
func (r *Reporter) record(ctx context.Context, c *conn, wantLastSeq bool) (lastSeq uint64, ok bool) {
	if c.closed.Load() || c.recorded {
		return 0, false
	}
	cctx, cancel := context.WithTimeout(ctx, r.opt.CallTimeout)
	defer cancel()
	// The batcher waits on a context that never ends: were it to give up while the batch
	// holding this Connect is in flight, c.mu would be released and a Disconnect could
	// overtake the Connect (a ghost online). cctx only keeps the Connect out of a batch
	// not yet sent; a batch in flight is bounded by the call timeout itself.
	res, err := r.connects.Do(context.WithoutCancel(ctx), connectCall{ctx: cctx, req: &presencev1.ConnectRequest{
		EdgeId: r.opt.EdgeID, UserId: c.UserID, ConnectionId: c.ConnID, WantLastSeq: wantLastSeq,
	}})
	if err != nil {
		r.markOwed()
		if !c.closed.Load() {
			r.opt.Log.Warn("record connection", "user_id", c.UserID, "err", err)
		}
		return 0, false
	}
	c.recorded = true
	if res.LastSeq == nil {
		return 0, false
	}
	return res.GetLastSeq(), true
}

// connectBatch makes one ConnectMany call for the calls whose caller still waits, bounded
// by the call timeout, and answers each with its own outcome: its response, or the error
// Connect would have returned for it alone (batchOrSingles).
func (r *Reporter) connectBatch(ctx context.Context, calls []connectCall) ([]coalesce.Result[*presencev1.ConnectResponse], error) {
	out := make([]coalesce.Result[*presencev1.ConnectResponse], len(calls))
	send := make([]*presencev1.ConnectRequest, 0, len(calls))
	at := make([]int, 0, len(calls)) // send[j] is calls[at[j]]
	for i, c := range calls {
		if err := c.ctx.Err(); err != nil {
			out[i].Err = err
			continue
		}
		send = append(send, c.req)
		at = append(at, i)
	}
	if len(send) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.opt.CallTimeout)
	defer cancel()
	results, err := batchOrSingles(ctx, r, batchKind[*presencev1.ConnectRequest, *presencev1.ConnectManyResult, *presencev1.ConnectResponse]{
		many: "ConnectMany", one: "Connect", until: &r.singleUntil,
		callMany: func(ctx context.Context, reqs []*presencev1.ConnectRequest) ([]*presencev1.ConnectManyResult, error) {
			res, err := unary(r.c.ConnectMany)(ctx, &presencev1.ConnectManyRequest{Connections: reqs})
			return res.GetResults(), err
		},
		item:    itemResult[*presencev1.ConnectManyResult, presencev1.ConnectResponse],
		callOne: unary(r.c.Connect),
	}, send)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		out[i] = results[j]
	}
	return out, nil
}

// batchKind is one kind of batch call to presence (ConnectMany, DisconnectMany) and the
// single call it stands for.
type batchKind[Req, Item, Res any] struct {
	many, one string        // the calls' names, for the log
	until     *atomic.Int64 // when (Unix ms) to try the batch call again; 0 while it works
	callMany  func(context.Context, []Req) ([]Item, error)
	item      func(Item) coalesce.Result[Res] // one item's answer as the single call's
	callOne   func(context.Context, Req) (Res, error)
}

// batchOrSingles makes one batch call of reqs, answering each with its own outcome (the
// whole call's error for each when it failed). Against a presence service too old to
// know the batch call (unimplemented, during a rolling upgrade) it makes one single call
// per request, side by side, every one ended before it returns, and keeps to single calls
// for singleRetry: the replicas answering may have been upgraded by then.
func batchOrSingles[Req, Item, Res any](ctx context.Context, r *Reporter, k batchKind[Req, Item, Res], reqs []Req) ([]coalesce.Result[Res], error) {
	out := make([]coalesce.Result[Res], len(reqs))
	if time.Now().UnixMilli() >= k.until.Load() {
		items, err := k.callMany(ctx, reqs)
		switch {
		case connect.CodeOf(err) == connect.CodeUnimplemented:
			if k.until.Swap(time.Now().Add(singleRetry).UnixMilli()) == 0 {
				r.opt.Log.Warn("presence service lacks "+k.many+"; sending one "+k.one+" per connection for a while", "err", err, "retry_in", singleRetry)
			}
		case err != nil:
			for i := range out {
				out[i].Err = err
			}
			return out, nil
		default:
			if len(items) != len(reqs) {
				return nil, fmt.Errorf("%s of %d connections answered %d results", k.many, len(reqs), len(items))
			}
			for i, it := range items {
				out[i] = k.item(it)
			}
			return out, nil
		}
	}
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			res, err := k.callOne(ctx, req)
			if err != nil {
				out[i].Err = err
				return
			}
			out[i].Value = res
		})
	}
	wg.Wait()
	return out, nil
}

// manyResult is one item of a batch call's answer (ConnectManyResult,
// DisconnectManyResult): the single call's response, or its error's code and message.
type manyResult[Res any] interface {
	GetErrorCode() string
	GetErrorMessage() string
	GetResponse() Res
}

// itemResult turns one item of a batch call's answer into what the single call would
// have returned: its response (an empty one when the service sent none), or an error with
// the item's code and message, which connect.CodeOf reads as it reads the single call's
// own. A code this edge does not know (a newer service) is unknown: still a failure, and
// owed.
func itemResult[Item manyResult[Res], Msg any, Res interface{ *Msg }](it Item) coalesce.Result[Res] {
	if it.GetErrorCode() != "" {
		return coalesce.Result[Res]{Err: rpc.ItemErr(it.GetErrorCode(), it.GetErrorMessage())}
	}
	if res := it.GetResponse(); res != nil {
		return coalesce.Result[Res]{Value: res}
	}
	return coalesce.Result[Res]{Value: Res(new(Msg))}
}

// unary adapts a Connect client method to one that takes and returns bare messages.
func unary[Req, Res any](call func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error)) func(context.Context, *Req) (*Res, error) {
	return func(ctx context.Context, req *Req) (*Res, error) {
		res, err := call(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
}

// disconnectBatch makes one DisconnectMany call, bounded by the call timeout, and answers
// each Disconnect with its own outcome (batchOrSingles).
func (r *Reporter) disconnectBatch(ctx context.Context, reqs []*presencev1.DisconnectRequest) ([]coalesce.Result[*presencev1.DisconnectResponse], error) {
	ctx, cancel := context.WithTimeout(ctx, r.opt.CallTimeout)
	defer cancel()
	return batchOrSingles(ctx, r, batchKind[*presencev1.DisconnectRequest, *presencev1.DisconnectManyResult, *presencev1.DisconnectResponse]{
		many: "DisconnectMany", one: "Disconnect", until: &r.singleDisconnectUntil,
		callMany: func(ctx context.Context, reqs []*presencev1.DisconnectRequest) ([]*presencev1.DisconnectManyResult, error) {
			res, err := unary(r.c.DisconnectMany)(ctx, &presencev1.DisconnectManyRequest{Connections: reqs})
			return res.GetResults(), err
		},
		item:    itemResult[*presencev1.DisconnectManyResult, presencev1.DisconnectResponse],
		callOne: unary(r.c.Disconnect),
	}, reqs)
}

// release queues the closed connection's Disconnect for the next DisconnectMany and
// returns; done runs once presence answered it. Once presence has it, the reporter forgets
// the connection. It first waits for a Connect of the connection in flight, so that the
// Disconnect cannot overtake it; being closed, the connection gets no Connect after that.
// Not to be called with r.mu held (record takes r.mu under c.mu).
func (r *Reporter) release(c *conn, done func()) {
	c.mu.Lock()
	//lint:ignore SA2001 the empty section is the point: wait for a Connect in flight.
	c.mu.Unlock()
	req := &presencev1.DisconnectRequest{EdgeId: r.opt.EdgeID, UserId: c.UserID, ConnectionId: c.ConnID}
	r.disconnects.Submit(context.Background(), req, func(res coalesce.Result[*presencev1.DisconnectResponse]) {
		r.released(c, res.Err)
		done()
	})
}

// released notes presence's answer to c's Disconnect: forgotten, or owed again.
func (r *Reporter) released(c *conn, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.owed = true
		c.releaseFailed = true
		r.opt.Log.Warn("record disconnection", "user_id", c.UserID, "err", err)
		return
	}
	if r.conns[c.ConnID] == c {
		delete(r.conns, c.ConnID)
	}
}

// Connected records a new connection. It waits (up to the call timeout) for the edge's
// first lease, so that a connection accepted during start-up is routed as soon as
// possible. A failure is logged and not fatal: the connection stays up, and is recorded
// after the next heartbeat that lands.
//
// With wantLastSeq, when presence recorded it and read the user's event log, Connected
// returns the user's newest event seq (presence's ConnectResponse.last_seq) with ok set;
// otherwise (not asked, no lease yet, the call failed, the log was unreadable) ok is false
// and the caller asks ReadUserEvents itself if it needs the seq.
func (r *Reporter) Connected(ctx context.Context, cn Conn, wantLastSeq bool) (lastSeq uint64, ok bool) {
	c := &conn{Conn: cn, connecting: true}
	r.mu.Lock()
	r.conns[cn.ConnID] = c
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
			r.handOver(c)
			return 0, false
		case <-t.C:
			r.opt.Log.Warn("connection accepted before the edge holds a lease", "user_id", cn.UserID)
			r.handOver(c)
			return 0, false // recorded once the lease is held
		}
	}
	return r.recordOwn(ctx, c, wantLastSeq)
}

// recordOwn is Connected's record of its own connection: from now on a resync may record
// it too (if this one fails).
func (r *Reporter) recordOwn(ctx context.Context, c *conn, wantLastSeq bool) (lastSeq uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.connecting = false
	return r.record(ctx, c, wantLastSeq)
}

// handOver leaves a connection Connected gave up waiting on to the resync that follows the
// edge's first lease.
func (r *Reporter) handOver(c *conn) {
	c.mu.Lock()
	c.connecting = false
	c.mu.Unlock()
}

// Disconnected records a closed connection after the grace period.
func (r *Reporter) Disconnected(cn Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.conns[cn.ConnID]
	if !ok { // never seen by Connected: tell presence anyway, Disconnect is idempotent
		c = &conn{Conn: cn}
		r.conns[cn.ConnID] = c
	}
	c.closed.Store(true)
	r.inflight.Add(1)
	if r.opt.Grace == 0 {
		// A goroutine, short-lived: release must not run under r.mu.
		go r.release(c, r.inflight.Done)
		return
	}
	c.timer = time.AfterFunc(r.opt.Grace, func() {
		r.mu.Lock()
		c.timer = nil
		r.mu.Unlock()
		r.release(c, r.inflight.Done)
	})
}

// Drain waits until every closed connection has been reported, each after its grace
// period as usual (a user who reconnects to another edge within it is never shown
// offline), but not past ctx: when ctx has a deadline, the disconnects still waiting are
// sent early enough to finish before it. The edge calls it when shutting down, after
// closing its connections.
func (r *Reporter) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.inflight.Wait(); close(done) }()
	if deadline, ok := ctx.Deadline(); ok {
		// Keep a share of what is left for the calls themselves.
		left := time.Until(deadline)
		flush := time.NewTimer(left - min(r.opt.CallTimeout, left/2))
		defer flush.Stop()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-flush.C:
			r.flush()
		}
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush sends every disconnect still waiting for its grace period now.
func (r *Reporter) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		if c.timer != nil && c.timer.Stop() {
			c.timer = nil
			// The timer's func will not run: do its work here; it balances the Add. A
			// goroutine, short-lived: release must not run under r.mu.
			go r.release(c, r.inflight.Done)
		}
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
