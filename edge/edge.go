// Package edge is the public WebSocket edge: it authenticates session tokens through the
// profile service, translates JSON frames into Connect calls on the services, and delivers
// the events they push back. The one-process binary (cmd/charla) and the edge's own
// process (cmd/edge) both build it with New.
//
// Wiring, in one place: internal/hub holds the sockets (pumps, limits, shutdown);
// internal/auth answers the handshake; internal/router answers every frame; the event
// streams of internal/upstream feed events.go, which writes them to the target users'
// connections; internal/presence tells the presence service which connections this edge
// holds, so that services route each event only to the edges that need it; sessions.go
// closes connections whose session ended.
//
// # Start-up: no connection before the edge can receive its events
//
// Services route an event to this edge only for connections the presence service has
// recorded, and the edge receives it only if the service is subscribed for this edge (its
// stream has sent the subscribed marker of shared/fanout). So the edge accepts no
// WebSocket handshake until it holds its lease and every event stream has been up once:
// a handshake arriving earlier waits (up to startWait, 5 s) and is then refused before
// the upgrade with 503 {"code":503,"message":"server starting"}, a plain "try again" for
// the client, rather than getting a connection that silently misses events. Once started,
// a connection is recorded with the presence service (OnConnect) before its first frame is
// read, so every event caused by its frames is routed to it. A stream that breaks later
// does not refuse handshakes (it reopens within its backoff, /ready reports it meanwhile);
// the events published while it is down are lost for every connection alike, and the
// clients recover them from history (messages are stored).
//
// # Replies before events
//
// Replies are sent with Send; events with SendEvent, which the hub holds while the
// connection's frame is being processed, so a command's SERVER_ACK precedes the events it
// causes on the same connection (docs/protocol.md §3.4) even though the services publish them
// before their RPC returns (see internal/hub).
package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla/charla/edge/internal/auth"
	"github.com/charla/charla/edge/internal/delivery"
	"github.com/charla/charla/edge/internal/door"
	"github.com/charla/charla/edge/internal/frames"
	"github.com/charla/charla/edge/internal/hub"
	"github.com/charla/charla/edge/internal/presence"
	"github.com/charla/charla/edge/internal/router"
	"github.com/charla/charla/edge/internal/sendbatch"
	"github.com/charla/charla/edge/internal/upstream"
	"github.com/charla/charla/edge/internal/webapp"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/peers"
)

// Conn is one WebSocket connection of the edge.
type Conn = hub.Connection[auth.UserData]

// Edge is a running edge.
type Edge struct {
	cfg     Config
	clients *peers.Clients
	log     *slog.Logger
	mux     *http.ServeMux

	edgeID   string
	hub      *hub.ConnectionManager[auth.UserData]
	auth     *auth.Authenticator
	router   *router.Router
	reporter *presence.Reporter
	receipts *delivery.Batcher
	streams  *upstream.Set
	// stopParkedGauge ends the hub's part in charla_edge_connections_parked (Shutdown).
	stopParkedGauge func()

	conns   sync.Map // connection id → *connState
	userLog logState

	pids *frames.PIDs // server pids of events and replies

	startWait time.Duration // how long a handshake waits for the edge to start

	runOnce  sync.Once
	shutOnce sync.Once
	draining atomic.Bool // set when Shutdown starts: /ready answers 503
}

// New builds an edge that reaches the services through clients.
func New(cfg Config, clients *peers.Clients, log *slog.Logger) (*Edge, error) {
	if clients == nil {
		return nil, errors.New("edge: no service clients")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Hub.PingPeriod == 0 && cfg.Hub.RateLimit == 0 {
		// A Config built by hand rather than by DeclareConfig: take every default.
		origins := cfg.Hub.AllowedOrigins
		cfg.Hub = hub.DefaultConfig()
		cfg.Hub.AllowedOrigins = origins
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.SessionCheckInterval <= 0 {
		cfg.SessionCheckInterval = 30 * time.Second
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	if cfg.EdgeID == "" {
		cfg.EdgeID = presence.NewEdgeID()
	}
	if !fanout.ValidEdgeID(cfg.EdgeID) {
		return nil, fmt.Errorf("edge: invalid edge id %q", cfg.EdgeID)
	}
	e := &Edge{cfg: cfg, clients: clients, log: log.With("edge_id", cfg.EdgeID), mux: http.NewServeMux(), edgeID: cfg.EdgeID, startWait: startWait}
	e.pids = frames.NewPIDs()

	e.auth = auth.New(clients.Profile, auth.Options{CacheTTL: cfg.AuthCacheTTL, Door: door.New(cfg.Door)})
	cfg.Metrics.DeclareRefusalReasons(RefusalReasons()...)
	e.router = router.New(router.Config{
		// Sends of all connections share SendMessages calls (one per commit, not per message).
		Chat:    sendbatch.Wrap(clients.Chat, sendbatch.Options{CallTimeout: cfg.RequestTimeout}),
		Profile: clients.Profile, Notify: clients.Notify,
		RequestTimeout: cfg.RequestTimeout, NewPID: e.newPID, Log: logWith(e.log, "router"),
		Metrics: cfg.Metrics,
	})
	e.hub = hub.NewConnectionManager(cfg.Hub, hub.Callbacks[auth.UserData]{
		AuthenticateAndGetUserData: e.authenticate,
		OnConnect:                  e.onConnect,
		OnDisconnect:               e.onDisconnect,
		ProcessClientMessage:       e.processClientMessage,
		OnRateLimited:              e.onRateLimited,
		GeneratePID:                e.newPID,
		OnHandshakeRefused: func(r *http.Request, _ int, reason string) {
			cfg.Metrics.HandshakeRefused(r.Context(), reason)
		},
	}, logWith(e.log, "hub"))
	e.stopParkedGauge = cfg.Metrics.WatchParked(func() int64 { return int64(e.hub.ParkedCount()) })
	e.reporter = presence.New(clients.Presence, presence.Options{
		EdgeID: cfg.EdgeID, Grace: cfg.PresenceGrace, CallTimeout: cfg.RequestTimeout,
		Log: logWith(e.log, "presence"),
	})
	e.receipts = delivery.New(clients.Chat, delivery.Options{Interval: cfg.ReceiptInterval, CallTimeout: cfg.RequestTimeout, Log: logWith(e.log, "delivery")})
	e.streams = upstream.NewSet(upstream.DefaultBackoff, logWith(e.log, "upstream"))
	e.addStreams()

	e.mux.Handle("GET /ws", e.hub)
	e.mux.HandleFunc("GET /health", e.health)
	e.mux.HandleFunc("GET /ready", e.ready)
	e.mux.Handle("GET /", webapp.Handler())
	return e, nil
}

func logWith(l *slog.Logger, part string) *slog.Logger { return l.With("part", part) }

// Handler serves /ws, /health, /ready and whatever Handle added.
func (e *Edge) Handler() http.Handler { return e.mux }

// Handle mounts another route on the edge's listener (for example /metrics).
func (e *Edge) Handle(pattern string, h http.Handler) { e.mux.Handle(pattern, h) }

// EdgeID returns the id this edge registered with the presence service.
func (e *Edge) EdgeID() string { return e.edgeID }

// ActiveConnections returns the number of open connections.
func (e *Edge) ActiveConnections() int { return e.hub.GetActiveConnectionsCount() }

// Run keeps the edge's background work (event streams, lease heartbeats, delivery
// receipts, session checks) going until ctx ends.
func (e *Edge) Run(ctx context.Context) error {
	started := false
	e.runOnce.Do(func() { started = true })
	if !started {
		return errors.New("edge: Run called twice")
	}
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){e.reporter.Run, e.receipts.Run, e.streams.Run, e.watchSessions} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// Shutdown makes /ready answer 503, stops accepting connections, closes every connection with 1001 and waits for
// them, up to ctx's deadline (or DrainTimeout when ctx has none), then waits until the
// closed connections are reported to the presence service. Each is reported after the
// usual grace period, not at once: the clients reconnect elsewhere within it, and their
// users must not be shown offline meanwhile (docs/protocol.md §5). The same deadline bounds
// the wait; disconnects still waiting near it are sent early.
func (e *Edge) Shutdown(ctx context.Context) error {
	var err error
	e.draining.Store(true)
	e.shutOnce.Do(func() {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, e.cfg.DrainTimeout)
			defer cancel()
		}
		err = errors.Join(e.hub.Shutdown(ctx), e.reporter.Drain(ctx))
		e.stopParkedGauge()
	})
	return err
}

// newPID returns a fresh server-generated pid.
func (e *Edge) newPID() string { return e.pids.Next() }

// startWait bounds how long a handshake waits for the edge to start (see the package doc).
const startWait = 5 * time.Second

// Reasons of the handshakes the edge refuses itself (the hub and auth have theirs).
const (
	reasonStarting  = "starting"
	reasonBadResume = "bad_resume"
)

// errStarting refuses a handshake that came before the edge could receive its events.
var errStarting = &hub.HTTPError{Status: http.StatusServiceUnavailable, Message: "server starting", Reason: reasonStarting}

// RefusalReasons are the reason labels of charla_edge_handshakes_refused_total: every
// reason the edge refuses a handshake for, each exported at 0 from the start.
func RefusalReasons() []string {
	r := []string{reasonStarting, reasonBadResume}
	r = append(r, hub.RefusalReasons...)
	return append(r, auth.RefusalReasons...)
}

// started reports whether the edge holds its lease and every event stream has been up,
// waiting up to startWait for it: only then does it accept handshakes.
func (e *Edge) started(ctx context.Context) bool {
	reg, up := e.reporter.Registered(), e.streams.Started()
	select {
	case <-reg:
		select {
		case <-up:
			return true // the common case: no timer
		default:
		}
	default:
	}
	t := time.NewTimer(e.startWait)
	defer t.Stop()
	for _, ch := range [...]<-chan struct{}{reg, up} {
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func (e *Edge) authenticate(r *http.Request) (int64, auth.UserData, error) {
	var resume uint64
	resuming := r.URL.Query().Has("resume")
	if resuming {
		var err error
		if resume, err = frames.ParseResume(r.URL.Query().Get("resume")); err != nil {
			return 0, auth.UserData{}, &hub.HTTPError{Status: http.StatusBadRequest, Message: err.Error(), Reason: reasonBadResume}
		}
	}
	if !e.started(r.Context()) {
		var none auth.UserData
		return 0, none, errStarting
	}
	id, data, err := e.auth.Authenticate(r)
	data.Resuming, data.Resume = resuming, resume
	if err != nil {
		var ref *auth.Refusal
		if errors.As(err, &ref) {
			he := &hub.HTTPError{Status: ref.Status, Message: ref.Message, Reason: ref.Reason}
			if err != error(ref) {
				he.Err = err // the cause, for the hub's log
			}
			return 0, data, he
		}
		return 0, data, &hub.HTTPError{Status: http.StatusUnauthorized, Message: "unauthorized", Err: err}
	}
	return id, data, nil
}

// onConnect runs before a connection's first frame is served. Without resume, presence's
// Connect answers the user's last seq too, so the handshake makes that one call (and
// ReadUserEvents only when Connect could not tell). With resume the events come from
// ReadUserEvents, which does not depend on Connect: the two run at once.
func (e *Edge) onConnect(c *Conn) error {
	e.cfg.Metrics.ConnectionOpened(c.Context())
	pc := presence.Conn{UserID: c.ID, ConnID: c.ConnID()}
	// The cursor first: it holds the events that arrive from now on, so a last seq read
	// by any of the calls below leaves no gap before the live events.
	cur := e.newState(c).cursor
	var err error
	if !c.UserData.Resuming {
		last, ok := e.reporter.Connected(c.Context(), pc, true)
		var known *uint64
		if ok {
			known = &last
		}
		err = e.startEvents(c, cur, known)
	} else {
		reported := make(chan struct{})
		go func() {
			defer close(reported)
			e.reporter.Connected(c.Context(), pc, false)
		}()
		err = e.startEvents(c, cur, nil)
		<-reported
	}
	if err != nil {
		if c.Context().Err() == nil {
			c.Close(closeInternal, "events unavailable: reconnect")
		}
		return fmt.Errorf("start events of connection %s: %w", c.ConnID(), err)
	}
	return nil
}

func (e *Edge) onDisconnect(c *Conn, err error) {
	e.cfg.Metrics.ConnectionClosed(context.Background())
	e.conns.Delete(c.ConnID())
	e.reporter.Disconnected(presence.Conn{UserID: c.ID, ConnID: c.ConnID()})
	if err != nil {
		e.log.Debug("connection closed", "user_id", c.ID, "err", err)
	}
}

func (e *Edge) processClientMessage(c *Conn, msg []byte) {
	caller := router.Caller{UserID: c.ID, ConnID: c.ConnID()}
	if s := e.stateOf(c); s != nil {
		caller.Session = s
	}
	reply := e.router.Handle(c.Context(), caller, msg)
	e.sent(c.Send(reply))
}

func (e *Edge) onRateLimited(c *Conn, msg []byte) {
	e.sent(c.Send(e.router.HandleRateLimited(msg)))
}

// sent accounts for the result of a Send: an error means the connection is closing (when
// its buffer was full, it is being closed with 1008 and the frame is counted as dropped).
func (e *Edge) sent(err error) {
	if errors.Is(err, hub.ErrSlowConsumer) {
		e.cfg.Metrics.SendDropped(context.Background())
	}
}

func (e *Edge) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"status": "ok", "active_connections": e.hub.GetActiveConnectionsCount(), "timestamp": time.Now().Unix(),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
