package server

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/presencesvc/internal/presence"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	"github.com/charla/charla/shared/rpc"
)

// batchSize bounds the users handled (locked, changed, announced) together when an edge
// re-registers or dies.
const batchSize = 100

// Server implements presencev1connect.PresenceServiceHandler except StreamEvents.
type Server struct {
	presencev1connect.UnimplementedPresenceServiceHandler

	store    presence.Store
	announce *Announcer
	log      *slog.Logger
	now      func() time.Time
	lease    time.Duration
	locks    userLocks
	queue    *announceQueue
	// troubleAt is when (Unix ms, by now) the store last failed a lease renewal or a
	// sweep; the service's start counts as such a time.
	troubleAt atomic.Int64
	// capConnections, when set, closes a user's connections beyond the cap after a Connect.
	capConnections func(ctx context.Context, userID int64)
}

// SetConnectionCap makes Connect close, with 4002, a user's oldest connections beyond max
// (docs/protocol.md §8.5), on whichever edges hold them. excess lists them.
func (s *Server) SetConnectionCap(max int, excess func(ctx context.Context, userID int64, keep int) ([]EdgeConnection, error)) {
	s.capConnections = func(ctx context.Context, userID int64) {
		conns, err := excess(ctx, userID, max)
		if err != nil {
			s.log.WarnContext(ctx, "connection cap: list connections", "user_id", userID, "err", err)
			return
		}
		for _, c := range conns {
			ev := &presencev1.StreamEventsResponse{Event: &presencev1.StreamEventsResponse_CloseConnection{CloseConnection: &presencev1.CloseConnectionEvent{
				ConnectionId: c.ConnectionID, UserId: userID, Code: 4002, Reason: "too many connections",
			}}}
			if err := s.announce.pub.PublishToEdge(ctx, c.EdgeID, ev, userID); err != nil {
				s.log.WarnContext(ctx, "connection cap: close connection", "user_id", userID, "edge_id", c.EdgeID, "err", err)
			}
		}
	}
}

// EdgeConnection is a connection and the edge that holds it.
type EdgeConnection struct {
	ConnectionID, EdgeID string
}

var _ presencev1connect.PresenceServiceHandler = (*Server)(nil)

// New returns a server over store that announces through announce. now is the clock and
// lease the length of an edge's lease.
func New(store presence.Store, announce *Announcer, log *slog.Logger, now func() time.Time, lease time.Duration) *Server {
	s := &Server{store: store, announce: announce, log: log, now: now, lease: lease, queue: newAnnounceQueue(announce)}
	// Edges could not renew while no presence process ran: hold off as after trouble.
	s.troubled()
	return s
}

// Close announces what is still queued and stops the announcement workers. Transitions
// after Close are announced synchronously.
func (s *Server) Close() { s.queue.close() }

// Flush waits until every transition committed before the call has been announced.
func (s *Server) Flush() { s.queue.flush() }

func (s *Server) nowMs() int64 { return s.now().UnixMilli() }

// GetPresence answers one entry per asked id, in the order asked; ids never seen are
// offline with last_seen 0.
func (s *Server) GetPresence(ctx context.Context, req *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error) {
	ids := req.Msg.GetUserIds()
	if err := presence.ValidateUserIDs(ids); err != nil {
		return nil, s.toConnect(ctx, "GetPresence", err)
	}
	res := &presencev1.GetPresenceResponse{Presences: make([]*presencev1.Presence, 0, len(ids))}
	if len(ids) == 0 {
		return connect.NewResponse(res), nil
	}
	got, err := s.store.Presences(ctx, ids)
	if err != nil {
		return nil, s.toConnect(ctx, "GetPresence", err)
	}
	for _, id := range ids {
		p := got[id]
		res.Presences = append(res.Presences, &presencev1.Presence{UserId: id, IsOnline: p.IsOnline, LastSeen: p.LastSeen})
	}
	return connect.NewResponse(res), nil
}

// GetRoutes answers one entry per asked id, in the order asked, with the live edges that
// hold its connections.
func (s *Server) GetRoutes(ctx context.Context, req *connect.Request[presencev1.GetRoutesRequest]) (*connect.Response[presencev1.GetRoutesResponse], error) {
	ids := req.Msg.GetUserIds()
	if err := presence.ValidateUserIDs(ids); err != nil {
		return nil, s.toConnect(ctx, "GetRoutes", err)
	}
	res := &presencev1.GetRoutesResponse{Routes: make([]*presencev1.Route, 0, len(ids))}
	if len(ids) == 0 {
		return connect.NewResponse(res), nil
	}
	routes, err := s.store.Routes(ctx, ids)
	if err != nil {
		return nil, s.toConnect(ctx, "GetRoutes", err)
	}
	for _, id := range ids {
		res.Routes = append(res.Routes, &presencev1.Route{UserId: id, EdgeIds: routes[id]})
	}
	return connect.NewResponse(res), nil
}

// RegisterEdge starts the edge's lease, or starts it anew after the edge lost it. Edge ids
// are random per process (presence.v1), so a known id is the same process coming back: the
// connections it recorded and still holds stay, and their users are never shown offline
// for the re-registration. (The edge records all its connections again right after, and
// the ones it closed meanwhile it disconnects, so nothing stale remains.)
func (s *Server) RegisterEdge(ctx context.Context, req *connect.Request[presencev1.RegisterEdgeRequest]) (*connect.Response[presencev1.RegisterEdgeResponse], error) {
	edgeID := req.Msg.GetEdgeId()
	if err := presence.ValidateEdgeID(edgeID); err != nil {
		return nil, s.toConnect(ctx, "RegisterEdge", err)
	}
	if err := s.store.StartLease(ctx, edgeID, s.nowMs()+s.lease.Milliseconds()); err != nil {
		s.troubled()
		return nil, s.toConnect(ctx, "RegisterEdge", err)
	}
	s.log.Info("edge registered", "edge_id", edgeID)
	return connect.NewResponse(&presencev1.RegisterEdgeResponse{LeaseMs: s.lease.Milliseconds()}), nil
}

// Heartbeat renews a lease the sweeper has not ended, even one past its time; not_found
// once the sweeper ended it (the edge then registers again).
func (s *Server) Heartbeat(ctx context.Context, req *connect.Request[presencev1.HeartbeatRequest]) (*connect.Response[presencev1.HeartbeatResponse], error) {
	edgeID := req.Msg.GetEdgeId()
	if err := presence.ValidateEdgeID(edgeID); err != nil {
		return nil, s.toConnect(ctx, "Heartbeat", err)
	}
	if err := s.store.Heartbeat(ctx, edgeID, s.nowMs()+s.lease.Milliseconds()); err != nil {
		if !errors.Is(err, presence.ErrEdgeNotFound) {
			s.troubled() // the edge could not renew through no fault of its own
		}
		return nil, s.toConnect(ctx, "Heartbeat", err)
	}
	return connect.NewResponse(&presencev1.HeartbeatResponse{}), nil
}

// Connect records a connection; the user's first one anywhere is announced as user_online.
func (s *Server) Connect(ctx context.Context, req *connect.Request[presencev1.ConnectRequest]) (*connect.Response[presencev1.ConnectResponse], error) {
	m := req.Msg
	if err := presence.ValidateConnection(m.GetEdgeId(), m.GetUserId(), m.GetConnectionId()); err != nil {
		return nil, s.toConnect(ctx, "Connect", err)
	}
	unlock := s.locks.lock(m.GetUserId())
	defer unlock()
	t, err := s.store.Connect(ctx, m.GetEdgeId(), m.GetUserId(), m.GetConnectionId(), s.nowMs())
	if err != nil {
		return nil, s.toConnect(ctx, "Connect", err)
	}
	// Announced after the commit, off this call's path, in the user's order (queue.go).
	s.queue.enqueue(ctx, t)
	if s.capConnections != nil && !t.BecameOnline() {
		s.capConnections(ctx, m.GetUserId())
	}
	return connect.NewResponse(&presencev1.ConnectResponse{BecameOnline: t.BecameOnline()}), nil
}

// ConnectMany records many connections, answering each exactly as Connect would have,
// had the connections come as Connects one after the other in the request's order: an
// invalid one gets its own invalid_argument and the others proceed, a user's second
// connection does not become online, and user_online is announced once per user that
// became online. All the users' stripes are held together and the store records the
// whole batch at once (on SQLite, one commit). More than presence.MaxConnectMany
// connections fail the call as a whole.
func (s *Server) ConnectMany(ctx context.Context, req *connect.Request[presencev1.ConnectManyRequest]) (*connect.Response[presencev1.ConnectManyResponse], error) {
	items := req.Msg.GetConnections()
	if err := presence.ValidateConnectMany(len(items)); err != nil {
		return nil, s.toConnect(ctx, "ConnectMany", err)
	}
	results := make([]*presencev1.ConnectManyResult, len(items))
	conns, at, users := validConnections(items, func(i int, err error) { results[i] = s.connectManyError(ctx, err) })
	if len(conns) > 0 {
		s.connectMany(ctx, conns, at, users, results)
	}
	return connect.NewResponse(&presencev1.ConnectManyResponse{Results: results}), nil
}

// connectionItem is a connection as a batch request carries it (a ConnectRequest, a
// DisconnectRequest).
type connectionItem interface {
	GetEdgeId() string
	GetUserId() int64
	GetConnectionId() string
}

// validConnections checks each of items as Connect and Disconnect check theirs and passes
// the invalid ones to invalid. It returns the valid ones, where each came from (conns[j]
// is items[at[j]]) and their users, for the stripe locks.
func validConnections[T connectionItem](items []T, invalid func(i int, err error)) (conns []presence.Connection, at []int, users []int64) {
	conns = make([]presence.Connection, 0, len(items))
	at = make([]int, 0, len(items))
	users = make([]int64, 0, len(items))
	for i, m := range items {
		if err := presence.ValidateConnection(m.GetEdgeId(), m.GetUserId(), m.GetConnectionId()); err != nil {
			invalid(i, err)
			continue
		}
		conns = append(conns, presence.Connection{EdgeID: m.GetEdgeId(), UserID: m.GetUserId(), ConnectionID: m.GetConnectionId()})
		at = append(at, i)
		users = append(users, m.GetUserId())
	}
	return conns, at, users
}

// connectMany records the valid connections of a ConnectMany and sets their results.
func (s *Server) connectMany(ctx context.Context, conns []presence.Connection, at []int, users []int64, results []*presencev1.ConnectManyResult) {
	// lockAll takes each stripe once, in ascending order, whatever the duplicates.
	unlock := s.locks.lockAll(users)
	defer unlock()
	outs := s.store.ConnectMany(ctx, conns, s.nowMs())
	ts := make([]presence.Transition, 0, len(outs))
	// capped lists, once each, the users that Connect would have capped: those with a
	// recorded connection that did not make them online. The cap reads the user's
	// connections as stored, so capping once after all are recorded closes the same
	// connections as capping after each.
	var capped []int64
	seen := make(map[int64]bool)
	for j, o := range outs {
		if o.Err != nil {
			results[at[j]] = s.connectManyError(ctx, o.Err)
			continue
		}
		ts = append(ts, o.Transition)
		results[at[j]] = &presencev1.ConnectManyResult{Response: &presencev1.ConnectResponse{BecameOnline: o.Transition.BecameOnline()}}
		if u := conns[j].UserID; !o.Transition.BecameOnline() && !seen[u] {
			seen[u] = true
			capped = append(capped, u)
		}
	}
	// Announced after the commit, off this call's path, in each user's order (queue.go).
	s.queue.enqueue(ctx, ts...)
	if s.capConnections != nil {
		for _, u := range capped {
			s.capConnections(ctx, u)
		}
	}
}

// connectManyError is one connection's error in a ConnectMany: the code and message
// Connect would have answered for it alone.
func (s *Server) connectManyError(ctx context.Context, err error) *presencev1.ConnectManyResult {
	code, msg := rpc.ItemError(s.toConnect(ctx, "ConnectMany", err))
	return &presencev1.ConnectManyResult{ErrorCode: code, ErrorMessage: msg}
}

// Disconnect removes a connection; the user's last one is announced as user_offline.
func (s *Server) Disconnect(ctx context.Context, req *connect.Request[presencev1.DisconnectRequest]) (*connect.Response[presencev1.DisconnectResponse], error) {
	m := req.Msg
	if err := presence.ValidateConnection(m.GetEdgeId(), m.GetUserId(), m.GetConnectionId()); err != nil {
		return nil, s.toConnect(ctx, "Disconnect", err)
	}
	unlock := s.locks.lock(m.GetUserId())
	defer unlock()
	t, err := s.store.Disconnect(ctx, m.GetEdgeId(), m.GetUserId(), m.GetConnectionId(), s.nowMs())
	if err != nil {
		return nil, s.toConnect(ctx, "Disconnect", err)
	}
	s.queue.enqueue(ctx, t)
	return connect.NewResponse(&presencev1.DisconnectResponse{BecameOffline: t.BecameOffline()}), nil
}

// DisconnectMany removes many connections, answering each exactly as Disconnect would
// have, had the connections come as Disconnects one after the other in the request's
// order: an invalid one gets its own invalid_argument and the others proceed, only a
// user's last connection makes them offline, a connection already removed (or never
// recorded) succeeds without a change, and user_offline is announced once per user that
// became offline. All the users' stripes are held together and the store removes the
// whole batch at once (on SQLite, one commit). More than presence.MaxDisconnectMany
// connections fail the call as a whole.
func (s *Server) DisconnectMany(ctx context.Context, req *connect.Request[presencev1.DisconnectManyRequest]) (*connect.Response[presencev1.DisconnectManyResponse], error) {
	items := req.Msg.GetConnections()
	if err := presence.ValidateDisconnectMany(len(items)); err != nil {
		return nil, s.toConnect(ctx, "DisconnectMany", err)
	}
	results := make([]*presencev1.DisconnectManyResult, len(items))
	conns, at, users := validConnections(items, func(i int, err error) { results[i] = s.disconnectManyError(ctx, err) })
	if len(conns) > 0 {
		s.disconnectMany(ctx, conns, at, users, results)
	}
	return connect.NewResponse(&presencev1.DisconnectManyResponse{Results: results}), nil
}

// disconnectMany removes the valid connections of a DisconnectMany and sets their results.
func (s *Server) disconnectMany(ctx context.Context, conns []presence.Connection, at []int, users []int64, results []*presencev1.DisconnectManyResult) {
	// lockAll takes each stripe once, in ascending order, whatever the duplicates.
	unlock := s.locks.lockAll(users)
	defer unlock()
	outs := s.store.DisconnectMany(ctx, conns, s.nowMs())
	ts := make([]presence.Transition, 0, len(outs))
	for j, o := range outs {
		if o.Err != nil {
			results[at[j]] = s.disconnectManyError(ctx, o.Err)
			continue
		}
		ts = append(ts, o.Transition)
		results[at[j]] = &presencev1.DisconnectManyResult{Response: &presencev1.DisconnectResponse{BecameOffline: o.Transition.BecameOffline()}}
	}
	// Announced after the commit, off this call's path, in each user's order (queue.go).
	s.queue.enqueue(ctx, ts...)
}

// disconnectManyError is one connection's error in a DisconnectMany: the code and message
// Disconnect would have answered for it alone.
func (s *Server) disconnectManyError(ctx context.Context, err error) *presencev1.DisconnectManyResult {
	code, msg := rpc.ItemError(s.toConnect(ctx, "DisconnectMany", err))
	return &presencev1.DisconnectManyResult{ErrorCode: code, ErrorMessage: msg}
}

// settleBatch applies change to each user under the users' stripe locks and announces the
// transitions together (one contact lookup, one route query). A failure stops the batch
// after announcing what already changed.
func (s *Server) settleBatch(ctx context.Context, users []int64, change func(ctx context.Context, userID, now int64) (presence.Transition, error)) error {
	unlock := s.locks.lockAll(users)
	defer unlock()
	ts := make([]presence.Transition, 0, len(users))
	var err error
	for _, u := range users {
		var t presence.Transition
		t, err = change(ctx, u, s.nowMs())
		if err != nil {
			break
		}
		ts = append(ts, t)
	}
	s.queue.enqueue(ctx, ts...)
	return err
}

// sweepStepTimeout bounds each step of a sweep, so that a database that stopped answering
// fails the sweep (and counts as trouble) instead of holding it.
func (s *Server) sweepStepTimeout() time.Duration { return s.lease / 3 }

// troubled notes that leases could not be renewed through no fault of the edges: the store
// failed or did not answer.
func (s *Server) troubled() { s.troubleAt.Store(s.nowMs()) }

// holdingOff reports whether leases must not be ended yet: the store was in trouble less
// than a lease length ago (or the service started less than that ago), so an edge may have
// been kept from renewing. Ending its lease would take its users offline although they
// never left; a lease length of a working store gives every live edge time to renew.
func (s *Server) holdingOff(now int64) bool {
	return now-s.troubleAt.Load() < s.lease.Milliseconds()
}

// Sweep ends the leases past their time (unless holding off, see holdingOff), takes offline
// the users whose connections are on edges with an ended lease, and removes dead edges
// that hold nothing. Several processes may sweep at once: each user's change is its own
// transaction on the user's row, so a transition is reported (and announced) by one of
// them only.
func (s *Server) Sweep(ctx context.Context) error {
	if err := s.sweep(ctx); err != nil {
		if ctx.Err() == nil {
			s.troubled()
		}
		return err
	}
	return nil
}

func (s *Server) sweep(ctx context.Context) error {
	if now := s.nowMs(); !s.holdingOff(now) {
		sctx, cancel := context.WithTimeout(ctx, s.sweepStepTimeout())
		n, err := s.store.EndLeases(sctx, now)
		cancel()
		if err != nil {
			return err
		}
		if n > 0 {
			s.log.Warn("edge leases ended", "edges", n)
		}
	}
	for {
		sctx, cancel := context.WithTimeout(ctx, s.sweepStepTimeout())
		users, err := s.store.DeadConnectionUsers(sctx, batchSize)
		if err == nil && len(users) > 0 {
			err = s.settleBatch(sctx, users, s.store.ReapUser)
		}
		cancel()
		if err != nil {
			return err
		}
		if len(users) < batchSize {
			break
		}
	}
	sctx, cancel := context.WithTimeout(ctx, s.sweepStepTimeout())
	defer cancel()
	if _, err := s.store.DeleteDeadEdges(sctx); err != nil {
		return err
	}
	return nil
}

// RunSweeper sweeps every interval until ctx ends.
func (s *Server) RunSweeper(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("sweep dead edges", "err", err)
			}
		}
	}
}
