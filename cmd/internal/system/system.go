// Package system wires the whole of Charla in one process: the four services mounted on one
// internal RPC listener and the edge on its own listener, talking through the same Connect
// clients over loopback as when deployed apart. cmd/charla runs it; the end-to-end tests
// start one per test on a temporary database through package systemtest.
package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/chatsvc"
	"github.com/charla/charla/edge"
	"github.com/charla/charla/edge/edgemetrics"
	"github.com/charla/charla/notifysvc"
	"github.com/charla/charla/presencesvc"
	"github.com/charla/charla/profilesvc"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/health"
	"github.com/charla/charla/shared/logging"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/svc"
	"github.com/charla/charla/shared/telemetry"
)

// Options configure a System.
type Options struct {
	// Edge is the edge's configuration; Edge.Addr may use port 0.
	Edge edge.Config
	// RPCAddr is the internal listener; port 0 picks a free one.
	RPCAddr string
	// DatabaseURL is shared by the four services (each opens its own pool).
	DatabaseURL string
	// Bus carries events; nil means a new in-process bus, owned and closed by the System.
	Bus bus.Bus
	// History bounds the user event log (RESUME_MAX_EVENTS, RESUME_MAX_AGE).
	History eventlog.Options
	// Token is INTERNAL_API_TOKEN; empty means none.
	Token string
	// Log is the root logger; nil discards.
	Log *slog.Logger
	// Telemetry, when set, traces and measures every internal call and database statement
	// and serves GET /metrics on the RPC listener.
	Telemetry *telemetry.Telemetry
	// ClientOptions and HandlerOptions are added to every internal client and service handler.
	ClientOptions  []connect.ClientOption
	HandlerOptions []connect.HandlerOption
	// Extra routes mounted on the RPC listener beside the services.
	RPCRoutes map[string]http.Handler
	// Services builds the four services by name (ConfigureServices, after parsing the
	// settings); nil builds each with its defaults.
	Services map[string]svc.Constructor
}

// System is a running Charla.
type System struct {
	// RPCAddr and EdgeAddr are the actual listening addresses.
	RPCAddr, EdgeAddr string
	// Clients reach the services over the RPC listener.
	Clients *peers.Clients
	// Edge is the running edge.
	Edge *edge.Edge
	// Health answers the RPC listener's gRPC health checks and GET /ready: the four
	// databases and the bus answer, and the system is not closing.
	Health *health.Checker

	log      *slog.Logger
	rpcSrv   *http.Server
	edgeSrv  *http.Server
	stopEdge context.CancelFunc
	edgeDone chan struct{}
	closers  []func() error
	errc     chan error
}

// serviceList is the four services, in the order they are built: each with the settings it
// declares (as in its own binary) and with its defaults.
var serviceList = []struct {
	name      string
	configure svc.Configure
	defaults  svc.Constructor
}{
	{"profilesvc", profilesvc.Configure, func(ctx context.Context, d svc.Deps) (svc.Service, error) { return profilesvc.New(ctx, d) }},
	{"chatsvc", chatsvc.Configure, func(ctx context.Context, d svc.Deps) (svc.Service, error) { return chatsvc.New(ctx, d) }},
	{"notifysvc", notifysvc.Configure, func(ctx context.Context, d svc.Deps) (svc.Service, error) { return notifysvc.New(ctx, d) }},
	{"presencesvc", presencesvc.Configure, func(ctx context.Context, d svc.Deps) (svc.Service, error) { return presencesvc.New(ctx, d) }},
}

// ConfigureServices declares the settings of the four services on cfg, as each declares
// them in its own binary; the result goes to Options.Services once cfg is parsed.
func ConfigureServices(cfg *config.Loader) map[string]svc.Constructor {
	out := make(map[string]svc.Constructor, len(serviceList))
	for _, c := range serviceList {
		out[c.name] = c.configure(cfg)
	}
	return out
}

// StartServices starts the four services on the RPC listener, without the edge. Call
// StartEdge next (after seeding data, if wanted) or Close.
func StartServices(ctx context.Context, opts Options) (_ *System, err error) {
	log := opts.Log
	if log == nil {
		log = logging.Discard()
	}
	s := &System{log: logging.Component(log, "charla"), errc: make(chan error, 2)}
	defer func() {
		if err != nil {
			s.Close(context.Background())
		}
	}()
	b := opts.Bus
	if b == nil {
		b = bus.NewInProcess()
		s.closers = append(s.closers, b.Close)
	}
	events, err := eventlog.Open(ctx, b, opts.History)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, events.Close)
	// Listen first, so that the clients know the address (the port may be 0).
	rpcLn, err := net.Listen("tcp", opts.RPCAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on RPC_ADDR %s: %w", opts.RPCAddr, err)
	}
	s.RPCAddr = rpcLn.Addr().String()
	clientOpts := opts.ClientOptions
	if opts.Telemetry != nil {
		clientOpts = append(opts.Telemetry.ConnectClientOptions(), clientOpts...)
	}
	s.Clients = peers.New(peers.Same(s.RPCAddr), opts.Token, nil, clientOpts...)
	s.closers = append(s.closers, s.Clients.Close)
	handlerOpts := append(svc.HandlerOptions(opts.Telemetry, opts.Token), opts.HandlerOptions...)
	var services []rpc.Service
	checks := map[string]health.Check{"bus": func(ctx context.Context) error { return bus.Ping(ctx, b) }}
	for _, c := range serviceList {
		newService := c.defaults
		if opts.Services != nil {
			if newService = opts.Services[c.name]; newService == nil {
				rpcLn.Close()
				return nil, fmt.Errorf("start %s: Options.Services has no constructor for it", c.name)
			}
		}
		db, err := sqldb.Open(ctx, opts.DatabaseURL)
		if err != nil {
			rpcLn.Close()
			return nil, err
		}
		s.closers = append(s.closers, db.Close)
		if opts.Telemetry != nil {
			if err := opts.Telemetry.RegisterDB(c.name, db.DB); err != nil {
				rpcLn.Close()
				return nil, err
			}
		}
		service, err := newService(ctx, svc.Deps{
			DB: db, Bus: b, Events: events, Peers: s.Clients, Log: logging.Component(log, c.name), HandlerOptions: handlerOpts,
		})
		if err != nil {
			rpcLn.Close()
			return nil, fmt.Errorf("start %s: %w", c.name, err)
		}
		s.closers = append(s.closers, service.Close)
		services = append(services, service.RPC())
		checks[c.name+" database"] = db.PingContext
	}
	s.Health = health.New(rpc.Names(services)...)
	for name, check := range checks {
		s.Health.Add(name, check)
	}
	mux := svc.Mux(opts.Telemetry, s.Health, services...)
	for pattern, h := range opts.RPCRoutes {
		mux.Handle(pattern, h)
	}
	s.rpcSrv = rpc.NewServer(mux)
	go func() { s.errc <- fmt.Errorf("serve RPC: %w", s.rpcSrv.Serve(rpcLn)) }()
	s.log.Info("internal RPC listening", "addr", s.RPCAddr)
	return s, nil
}

// StartEdge starts the edge on opts.Edge.Addr.
func (s *System) StartEdge(opts Options) error {
	ec := opts.Edge
	if opts.Telemetry != nil && ec.Metrics == nil {
		ec.Metrics = edgemetrics.New(opts.Telemetry)
	}
	e, err := edge.New(ec, s.Clients, logging.Component(nonNil(opts.Log), "edge"))
	if err != nil {
		return fmt.Errorf("start edge: %w", err)
	}
	if opts.Telemetry != nil {
		e.Handle("GET /metrics", opts.Telemetry.MetricsHandler())
	}
	ln, err := net.Listen("tcp", opts.Edge.Addr)
	if err != nil {
		return fmt.Errorf("listen on EDGE_ADDR %s: %w", opts.Edge.Addr, err)
	}
	s.Edge = e
	s.EdgeAddr = ln.Addr().String()
	s.edgeSrv = &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { s.errc <- fmt.Errorf("serve edge: %w", s.edgeSrv.Serve(ln)) }()
	ctx, cancel := context.WithCancel(context.Background())
	s.stopEdge = cancel
	s.edgeDone = make(chan struct{})
	go func() {
		defer close(s.edgeDone)
		if err := e.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("edge stopped", "err", err)
		}
	}()
	s.log.Info("edge listening", "addr", s.EdgeAddr, "ws", "ws://"+s.EdgeAddr+"/ws?token=TOKEN")
	return nil
}

// Start starts the services and the edge.
func Start(ctx context.Context, opts Options) (*System, error) {
	s, err := StartServices(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := s.StartEdge(opts); err != nil {
		s.Close(context.Background())
		return nil, err
	}
	return s, nil
}

// Err delivers the first error of a listener that stopped serving.
func (s *System) Err() <-chan error { return s.errc }

// Close drains the edge (closing its connections with 1001), then closes the services and
// their databases, then the RPC listener, within ctx's deadline where one is given.
func (s *System) Close(ctx context.Context) {
	if s.Health != nil {
		s.Health.Drain()
	}
	if s.edgeSrv != nil {
		_ = s.edgeSrv.Shutdown(ctx)
		if err := s.Edge.Shutdown(ctx); err != nil {
			s.log.Warn("edge drain incomplete", "err", err)
		}
		s.stopEdge()
		<-s.edgeDone
	}
	// Services finish their background work (presence's queued announcements call chat)
	// while the RPC listener still serves; only then does it stop.
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i]()
	}
	if s.rpcSrv != nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = s.rpcSrv.Shutdown(rctx)
		cancel()
		_ = s.rpcSrv.Close()
	}
}

func nonNil(log *slog.Logger) *slog.Logger {
	if log == nil {
		return logging.Discard()
	}
	return log
}
