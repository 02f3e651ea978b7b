// Package svc is what the four services have in common at the process level: the
// dependencies a service is built from, the interface the process wiring needs from it,
// and Main, which runs one service as its own process (deployed apart).
package svc

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/health"
	"github.com/charla/charla/shared/logging"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/telemetry"
)

// Deps are what a service is built from. The service owns nothing in Deps: the caller
// closes the database and the bus after closing the service.
type Deps struct {
	// DB holds the service's own tables; the service migrates them in its constructor.
	DB *sqldb.DB
	// Bus carries unsequenced events to the StreamEvents handlers of every process.
	Bus bus.Bus
	// Events is the user event log (sequenced events, resume history), on Bus's engine.
	Events eventlog.Log
	// Peers are clients of the other services (and of this one; use them only for others).
	Peers *peers.Clients
	// Log is the service's logger, already carrying its component.
	Log *slog.Logger
	// HandlerOptions go to the service's generated New...Handler: the internal-token
	// interceptor and tracing.
	HandlerOptions []connect.HandlerOption
}

// Service is a running service.
type Service interface {
	// RPC is the Connect handler to mount.
	RPC() rpc.Service
	// Close stops background work (pruning, lease sweeps) and waits for it.
	Close() error
}

// Constructor builds a service from its dependencies.
type Constructor func(ctx context.Context, deps Deps) (Service, error)

// Main runs one service as a process: configuration from .env, the environment and flags;
// telemetry (traces over OTLP when OTEL_* asks for them, GET /metrics on the RPC listener);
// its database, the bus, clients of its peers; the RPC listener until SIGINT or SIGTERM.
// It returns the process exit code.
func Main(name, defaultAddr string, newService Constructor) int {
	cfg := config.New(name)
	addr := cfg.String("RPC_ADDR", defaultAddr, "address of this service's RPC listener", config.HostPort)
	dbURL := cfg.String("DATABASE_URL", "", "sqlite://PATH (default "+sqldb.DefaultURL+") or mysql://DSN", func(v string) error {
		_, _, err := sqldb.ParseURL(v)
		return err
	})
	busURL := cfg.String("BUS_URL", "", "empty for in-process, nats://host:4222 for NATS", nil)
	history := HistoryOptions(cfg)
	token := cfg.String("INTERNAL_API_TOKEN", "", "bearer token required on every internal RPC", nil)
	chatURL := cfg.String("CHAT_URL", "127.0.0.1:8091", "chat service address: host:port, http(s)://host:port, or a comma-separated list of replicas", rpc.CheckTarget)
	profileURL := cfg.String("PROFILE_URL", "127.0.0.1:8092", "profile service address: host:port, http(s)://host:port, or a comma-separated list of replicas", rpc.CheckTarget)
	notifyURL := cfg.String("NOTIFY_URL", "127.0.0.1:8093", "notification service address: host:port, http(s)://host:port, or a comma-separated list of replicas", rpc.CheckTarget)
	presenceURL := cfg.String("PRESENCE_URL", "127.0.0.1:8094", "presence service address: host:port, http(s)://host:port, or a comma-separated list of replicas", rpc.CheckTarget)
	logFormat := cfg.String("LOG_FORMAT", "text", "json or text", config.OneOf("json", "text"))
	logLevel := cfg.String("LOG_LEVEL", "info", "debug, info, warn or error", config.OneOf("debug", "info", "warn", "error"))
	if err := cfg.Parse(os.Args[1:]); err != nil {
		if config.Exit(err) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s: configuration: %v\n", name, err)
		return 2
	}
	root, err := logging.New(os.Stderr, logging.Options{Format: *logFormat, Level: *logLevel})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration: %v\n", name, err)
		return 2
	}
	// "pid" is the client's request id in every log line (docs/protocol.md §3.2); the OS process id
	// goes under its own key.
	log := logging.Component(root, name).With("process_id", os.Getpid())
	if err := rpc.CheckListenAddr("RPC_ADDR", *addr, *token); err != nil {
		log.Error("refusing to start", "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, name, *addr, *dbURL, *busURL, history(), *token, peers.URLs{
		Chat: *chatURL, Profile: *profileURL, Notify: *notifyURL, Presence: *presenceURL,
	}, newService); err != nil {
		log.Error("stopped", "err", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, log *slog.Logger, name, addr, dbURL, busURL string, history eventlog.Options, token string, urls peers.URLs, newService Constructor) error {
	tel, err := telemetry.Setup(ctx, name)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(shutdownCtx); err != nil {
			log.Warn("telemetry shutdown", "err", err)
		}
	}()
	log.Info("telemetry", "tracing", tel.TracingEnabled(), "service_name", tel.ServiceName())
	db, err := sqldb.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := tel.RegisterDB(name, db.DB); err != nil {
		return err
	}
	b, err := bus.Open(busURL, bus.WithLogger(log), bus.WithMeterProvider(tel.MeterProvider()))
	if err != nil {
		return err
	}
	defer b.Close()
	events, err := eventlog.Open(ctx, b, history)
	if err != nil {
		return err
	}
	defer events.Close()
	clients := peers.New(urls, token, nil, tel.ConnectClientOptions()...)
	defer clients.Close()
	service, err := newService(ctx, Deps{
		DB: db, Bus: b, Events: events, Peers: clients, Log: log,
		HandlerOptions: HandlerOptions(tel, token),
	})
	if err != nil {
		return err
	}
	defer service.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on RPC_ADDR %s: %w", addr, err)
	}
	h := health.New(service.RPC().Name)
	Checks(h, name, db, b)
	srv := rpc.NewServer(Mux(tel, h, service.RPC()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve RPC: %w", err)
	case <-ctx.Done():
	}
	// NOT_SERVING from now on, while the calls in flight finish.
	h.Drain()
	log.Info("draining")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// Mux is what a service process serves on its RPC listener: the services, gRPC health
// checking and GET /ready answered by h (always SERVING and no /ready when h is nil),
// GET /health (200 while the process serves: a liveness probe), reflection, and GET
// /metrics when tel is not nil. /metrics, /ready and /health are not behind the token:
// probes and Prometheus come without credentials, and none carries user data.
func Mux(tel *telemetry.Telemetry, h *health.Checker, services ...rpc.Service) *http.ServeMux {
	var mux *http.ServeMux
	if h != nil {
		mux = rpc.NewMuxChecked(h, services...)
		mux.Handle("GET /ready", h)
	} else {
		mux = rpc.NewMux(services...)
	}
	// Liveness: the process serves HTTP. Unlike /ready it does not look at dependencies, so
	// a database outage makes instances unready, never restarts them.
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	if tel != nil {
		mux.Handle("GET /metrics", tel.MetricsHandler())
	}
	return mux
}

// Checks adds the checks of a service's dependencies to h: its database answers a ping,
// and the bus is connected.
func Checks(h *health.Checker, name string, db *sqldb.DB, b bus.Bus) {
	h.Add(name+" database", db.PingContext)
	h.Add("bus", func(ctx context.Context) error { return bus.Ping(ctx, b) })
}

// HandlerOptions are the handler options of a service: tracing and RPC metrics outermost,
// so calls refused for a bad token are traced and counted too, then the token check.
// tel may be nil (no instrumentation).
func HandlerOptions(tel *telemetry.Telemetry, token string) []connect.HandlerOption {
	var opts []connect.HandlerOption
	if tel != nil {
		opts = append(opts, tel.ConnectHandlerOptions()...)
	}
	// Most answers are a few hundred bytes; gzip costs more than it saves below 1 KiB.
	// A request message larger than rpc.MaxRequestBytes (decompressed) is refused
	// (resource_exhausted) before it is decoded.
	return append(opts, connect.WithInterceptors(rpc.AuthInterceptor(token)), connect.WithCompressMinBytes(1024),
		connect.WithReadMaxBytes(rpc.MaxRequestBytes))
}

// HistoryOptions declares RESUME_MAX_EVENTS and RESUME_MAX_AGE on cfg (docs/protocol.md
// §8.3); call the result after cfg.Parse.
func HistoryOptions(cfg *config.Loader) func() eventlog.Options {
	maxEvents := cfg.Int("RESUME_MAX_EVENTS", eventlog.DefaultMaxEvents, 1000, 1_000_000, "sequenced events held per user for resume, at least")
	maxAge := cfg.Duration("RESUME_MAX_AGE", eventlog.DefaultMaxAge, "how long sequenced events are held for resume, at least (in memory; JetStream holds RESUME_MAX_EVENTS per user)")
	return func() eventlog.Options { return eventlog.Options{MaxEvents: *maxEvents, MaxAge: *maxAge} }
}
