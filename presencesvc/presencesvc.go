// Package presencesvc is the presence service. Its Connect handler is mounted by the one-process
// binary (cmd/charla) and by its own process (cmd/presencesvc) alike.
//
// It knows which users are online on which edges (PresenceConnection), stores UserStatus
// with LastSeen, keeps the leases of the edges (Edge), announces PRESENCE_EVENT to online
// contacts on real transitions only, serves the user event log to the edges (StreamUserEvents, ReadUserEvents).
// A background sweeper takes the users of dead edges offline.
package presencesvc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/presencesvc/internal/presence"
	"github.com/charla/charla/presencesvc/internal/server"
	"github.com/charla/charla/presencesvc/internal/store"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/svc"
)

// EventService is the name this service's events carry on the bus.
const EventService = server.EventService

// Defaults of Options.
const (
	// DefaultLease is how long an edge's lease lasts without a heartbeat. With the sweep
	// interval it bounds how late the users of a dead edge go offline (15 s + 3 s < 30 s).
	DefaultLease = 15 * time.Second
	// DefaultSweepInterval is how often dead edges are looked for.
	DefaultSweepInterval = 3 * time.Second
	// DefaultMaxConnectionsPerUser is MAX_CONNECTIONS_PER_USER's default.
	DefaultMaxConnectionsPerUser = 10
)

// ChatPeer is what presence needs from the chat service (chatv1connect.ChatServiceClient
// implements it): contact ids of many users at once, and StopTyping.
type ChatPeer = server.ChatPeer

// Options tune the service; zero fields take the defaults.
type Options struct {
	// Lease is the length of an edge's lease (DefaultLease).
	Lease time.Duration
	// SweepInterval is how often the sweeper runs (DefaultSweepInterval).
	SweepInterval time.Duration
	// Now is the clock (time.Now); tests move it to expire leases without waiting.
	Now func() time.Time
	// Chat replaces deps.Peers.Chat, for tests.
	Chat ChatPeer
	// MaxConnectionsPerUser caps a user's connections across edges (docs/protocol.md
	// §8.5; MAX_CONNECTIONS_PER_USER); 0 means DefaultMaxConnectionsPerUser.
	MaxConnectionsPerUser int

	// onAnnounced, when set (by tests and benchmarks), is told how many transitions each
	// announcement batch announced.
	onAnnounced func(n int)
	// wrapStore, when set (by tests), wraps the store the server uses, to inject failures.
	wrapStore func(presence.Store) presence.Store
}

func (o Options) withDefaults() Options {
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxConnectionsPerUser <= 0 {
		o.MaxConnectionsPerUser = DefaultMaxConnectionsPerUser
	}

	return o
}

// Service implements presencev1connect.PresenceServiceHandler.
type Service struct {
	*server.Server
	deps      svc.Deps
	opts      Options
	store     *store.Store
	announcer *server.Announcer

	stopSweep context.CancelFunc
	sweepDone sync.WaitGroup
	closeOnce sync.Once
}

var _ presencev1connect.PresenceServiceHandler = (*Service)(nil)

// Configure declares MAX_CONNECTIONS_PER_USER on cfg and returns the constructor that
// builds the service with it (svc.Configure).
func Configure(cfg *config.Loader) svc.Constructor {
	maxConns := cfg.Int("MAX_CONNECTIONS_PER_USER", DefaultMaxConnectionsPerUser, 1, 10000, "connections per user across all edges; the oldest beyond it is closed with 4002")
	return func(ctx context.Context, deps svc.Deps) (svc.Service, error) {
		return NewWithOptions(ctx, deps, Options{MaxConnectionsPerUser: *maxConns})
	}
}

// New builds the service from its dependencies with the default options.
func New(ctx context.Context, deps svc.Deps) (*Service, error) {
	return NewWithOptions(ctx, deps, Options{})
}

// NewWithOptions builds the service, migrates its tables and starts the sweeper.
func NewWithOptions(ctx context.Context, deps svc.Deps, opts Options) (*Service, error) {
	opts = opts.withDefaults()
	if deps.DB == nil || deps.Bus == nil || deps.Log == nil {
		return nil, errors.New("presencesvc: DB, Bus and Log are required")
	}
	chat := opts.Chat
	if chat == nil {
		if deps.Peers == nil || deps.Peers.Chat == nil {
			return nil, errors.New("presencesvc: a chat peer is required")
		}
		chat = deps.Peers.Chat
	}
	if err := store.Migrate(ctx, deps.DB); err != nil {
		return nil, fmt.Errorf("presencesvc: %w", err)
	}
	st, err := store.New(ctx, deps.DB)
	if err != nil {
		return nil, fmt.Errorf("presencesvc: %w", err)
	}
	if deps.Events == nil {
		return nil, errors.New("presencesvc: the user event log is required")
	}
	announcer := server.NewAnnouncer(chat, deps.Events, deps.Bus, deps.Log, opts.onAnnounced)
	var ps presence.Store = st
	if opts.wrapStore != nil {
		ps = opts.wrapStore(st)
	}
	s := &Service{
		Server:    server.New(ps, announcer, deps.Log, opts.Now, opts.Lease),
		deps:      deps,
		opts:      opts,
		store:     st,
		announcer: announcer,
	}
	s.SetConnectionCap(opts.MaxConnectionsPerUser, func(ctx context.Context, userID int64, keep int) ([]server.EdgeConnection, error) {
		conns, err := st.ExcessConnections(ctx, userID, keep)
		out := make([]server.EdgeConnection, len(conns))
		for i, c := range conns {
			out[i] = server.EdgeConnection{ConnectionID: c.ConnectionID, EdgeID: c.EdgeID}
		}
		return out, err
	})
	sweepCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopSweep = cancel
	s.sweepDone.Add(1)
	go func() {
		defer s.sweepDone.Done()
		s.RunSweeper(sweepCtx, opts.SweepInterval)
	}()
	return s, nil
}

// compressMinBytes is the smallest response worth compressing. It is large because of
// StreamUserEvents: every edge follows the whole user event log through it, and gzip of
// its live batches (a few KiB each) took about 4 % of the one-process build's CPU at
// 2,000 msg/s, plus the edges' inflate, to save bytes on a link inside the deployment. Only
// a big catch-up batch after a broken stream is still compressed.
const compressMinBytes = 256 << 10

// lease is the length of an edge's lease.
func (s *Service) lease() time.Duration { return s.opts.Lease }

// RPC returns the Connect handler to mount.
func (s *Service) RPC() rpc.Service {
	// Presence answers are tiny and on the hot path of every event: gzip would cost more
	// than it saves.
	path, h := presencev1connect.NewPresenceServiceHandler(s, s.deps.HandlerOptionsWith(connect.WithCompressMinBytes(compressMinBytes))...)
	return rpc.Service{Name: presencev1connect.PresenceServiceName, Path: path, Handler: h}
}

// Close stops the sweeper, announces the transitions still queued and closes the store.
// Stop serving RPCs first: a transition after Close fails at the store.
func (s *Service) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.stopSweep()
		s.sweepDone.Wait()
		s.Server.Close()
		err = errors.Join(s.announcer.Close(), s.store.Close())
	})
	return err
}

// StreamEvents forwards the control events for one edge (connections to close).
func (s *Service) StreamEvents(ctx context.Context, req *connect.Request[presencev1.StreamEventsRequest], stream *connect.ServerStream[presencev1.StreamEventsResponse]) error {
	return fanout.Serve(ctx, s.deps.Bus, s.deps.Log, EventService, req.Msg.GetEdgeId(),
		func() *presencev1.StreamEventsResponse { return new(presencev1.StreamEventsResponse) }, stream.Send)
}

// StreamUserEvents follows the user event log for one edge (shared/fanout.ServeLog).
func (s *Service) StreamUserEvents(ctx context.Context, req *connect.Request[presencev1.StreamUserEventsRequest], stream *connect.ServerStream[presencev1.StreamUserEventsResponse]) error {
	return fanout.ServeLog(ctx, s.deps.Events, s.deps.Log, req.Msg.GetEdgeId(), req.Msg.AfterPosition, stream.Send)
}

// Connect records a connection (server.Server.Connect) and, when asked (want_last_seq),
// answers the user's newest event seq beside, read after the record: the edge sends it in
// CONNECTED without a ReadUserEvents of its own. A log that cannot be read leaves last_seq
// absent rather than failing a connection that is already recorded; the edge then asks
// ReadUserEvents.
func (s *Service) Connect(ctx context.Context, req *connect.Request[presencev1.ConnectRequest]) (*connect.Response[presencev1.ConnectResponse], error) {
	res, err := s.Server.Connect(ctx, req)
	if err != nil || !req.Msg.GetWantLastSeq() {
		return res, err
	}
	last, err := s.deps.Events.LastSeq(ctx, req.Msg.GetUserId())
	if err != nil {
		s.deps.Log.WarnContext(ctx, "connect: read the last seq", "user_id", req.Msg.GetUserId(), "err", err)
		return res, nil
	}
	res.Msg.LastSeq = &last
	return res, nil
}

// lastSeqWorkers bounds the last-seq reads of one ConnectMany running at once: on
// JetStream each is a round trip, and a batch of a few hundred read one after the other
// would hold every handshake in it.
const lastSeqWorkers = 8

// ConnectMany records many connections (server.Server.ConnectMany) and, for each recorded
// one that asked (want_last_seq), answers the user's newest event seq as Connect does. A
// last seq that cannot be read is left absent and logged, as in Connect.
func (s *Service) ConnectMany(ctx context.Context, req *connect.Request[presencev1.ConnectManyRequest]) (*connect.Response[presencev1.ConnectManyResponse], error) {
	res, err := s.Server.ConnectMany(ctx, req)
	if err != nil {
		return res, err
	}
	var want []int // the results to add a last seq to
	for i, item := range req.Msg.GetConnections() {
		if item.GetWantLastSeq() && res.Msg.Results[i].GetErrorCode() == "" {
			want = append(want, i)
		}
	}
	if len(want) == 0 {
		return res, nil
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(lastSeqWorkers, len(want)) {
		wg.Go(func() {
			for i := range jobs {
				user := req.Msg.GetConnections()[i].GetUserId()
				last, err := s.deps.Events.LastSeq(ctx, user)
				if err != nil {
					s.deps.Log.WarnContext(ctx, "connect many: read the last seq", "user_id", user, "err", err)
					continue
				}
				res.Msg.Results[i].Response.LastSeq = &last
			}
		})
	}
	for _, i := range want {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return res, nil
}

// ReadUserEvents returns a user's held events after a seq (resume, catch-up).
func (s *Service) ReadUserEvents(ctx context.Context, req *connect.Request[presencev1.ReadUserEventsRequest]) (*connect.Response[presencev1.ReadUserEventsResponse], error) {
	res, err := fanout.ReadUserEvents(ctx, s.deps.Events, req.Msg)
	if err != nil {
		if connect.CodeOf(err) == connect.CodeUnavailable {
			s.deps.Log.ErrorContext(ctx, "read user events", "user_id", req.Msg.GetUserId(), "err", err)
			return nil, connect.NewError(connect.CodeUnavailable, errors.New("event history unavailable"))
		}
		return nil, err
	}
	return connect.NewResponse(res), nil
}
