// Package svc is what the four services have in common at the process level: the
// dependencies a service is built from, the interface the process wiring needs from it,
// the settings of the backends they run on, and Main, which runs one service as its own
// process (deployed apart).
package svc

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/shared/boot"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/health"
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

// HandlerOptionsWith returns the options for a service's generated New...Handler:
// d.HandlerOptions, then own. Connect applies options in order, so a service's own choices
// (a compression threshold, a smaller request bound) win over the shared ones.
func (d Deps) HandlerOptionsWith(own ...connect.HandlerOption) []connect.HandlerOption {
	return append(slices.Clone(d.HandlerOptions), own...)
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

// Configure declares a service's own settings on cfg (most services have none) and
// returns its constructor, which reads them: call the constructor after cfg.Parse. Every
// service exports one (chatsvc.Configure, ...), so that its settings behave the same in
// its own binary (Main) and in the one-process binary (cmd/charla).
type Configure func(cfg *config.Loader) Constructor

// Backends are the settings of a process that runs services: their database, the bus
// and the user event log's history.
type Backends struct {
	// DatabaseURL is DATABASE_URL (sqldb.ParseURL).
	DatabaseURL string
	// BusURL is BUS_URL: empty for in-process, nats://... for NATS.
	BusURL string
	// History is RESUME_MAX_EVENTS, RESUME_MAX_AGE and EVENTS_STREAM.
	History eventlog.Options
}

// DeclareBackends declares DATABASE_URL, BUS_URL and the history's settings
// (HistoryOptions) on cfg; call the result after cfg.Parse.
func DeclareBackends(cfg *config.Loader) func() Backends {
	dbURL := cfg.String("DATABASE_URL", "", "sqlite://PATH (default "+sqldb.DefaultURL+") or mysql://DSN", func(v string) error {
		_, _, err := sqldb.ParseURL(v)
		return err
	})
	busURL := cfg.String("BUS_URL", "", "empty for in-process, nats://host:4222 for NATS", nil)
	history := HistoryOptions(cfg)
	return func() Backends { return Backends{DatabaseURL: *dbURL, BusURL: *busURL, History: history()} }
}

// Main runs one service as a process, started like every Charla process (shared/boot:
// .env, the environment and flags; logging; telemetry, with GET /metrics on the RPC
// listener; SIGINT and SIGTERM): its database, the bus, clients of its peers, and the RPC
// listener until a signal. It returns the process exit code.
func Main(name, defaultAddr string, configure Configure) int {
	ctx, stop := boot.Signals()
	defer stop()
	p := boot.New(name, os.Stderr)
	addr := p.Config.String("RPC_ADDR", defaultAddr, "address of this service's RPC listener", config.HostPort)
	backends := DeclareBackends(p.Config)
	token := boot.Token(p.Config)
	urls := boot.PeerURLs(p.Config)
	newService := configure(p.Config)
	if code, ok := p.Start(ctx, os.Args[1:]); !ok {
		return code
	}
	defer p.Close()
	if err := rpc.CheckListenAddr("RPC_ADDR", *addr, *token); err != nil {
		p.Log.Error("refusing to start", "err", err)
		return boot.ExitConfig
	}
	if err := run(ctx, stop, p, *addr, backends(), *token, urls(), newService); err != nil {
		p.Log.Error("stopped", "err", err)
		return boot.ExitFailed
	}
	return boot.ExitOK
}

func run(ctx context.Context, stopSignals func(), p *boot.Process, addr string, backends Backends, token string, urls peers.URLs, newService Constructor) error {
	log, tel, name := p.Log, p.Telemetry, p.Name
	db, err := sqldb.Open(ctx, backends.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := tel.RegisterDB(name, db.DB); err != nil {
		return err
	}
	b, err := bus.Open(backends.BusURL, bus.WithLogger(log), bus.WithMeterProvider(tel.MeterProvider()))
	if err != nil {
		return err
	}
	defer b.Close()
	events, err := eventlog.Open(ctx, b, backends.History)
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
	// A second signal ends the process at once. NOT_SERVING from now on, while the calls
	// in flight finish.
	stopSignals()
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
	// A service with other needs gives its own options after these
	// (Deps.HandlerOptionsWith). A request message larger than rpc.MaxRequestBytes
	// (decompressed) is refused (resource_exhausted) before it is decoded.
	return append(opts, connect.WithInterceptors(rpc.AuthInterceptor(token)), connect.WithCompressMinBytes(CompressMinBytes),
		connect.WithReadMaxBytes(rpc.MaxRequestBytes))
}

// CompressMinBytes is the smallest reply a service compresses for a client that accepts
// gzip. Replies cross a network inside the deployment, where gzip costs both ends more
// CPU than the bytes it saves: a chat SendMessages batch's reply (~50 bytes per message,
// up to 10 KiB) crossed the former 1 KiB under load, and its gzip (a flate writer reset
// per reply) was 2.6 % of the one-process server's CPU at 10,000 msg/s; a page of 50
// notifications is about 5 KiB. Large history pages and lists are still compressed.
const CompressMinBytes = 16 << 10

// HistoryOptions declares RESUME_MAX_EVENTS, RESUME_MAX_AGE (docs/protocol.md §8.3) and
// EVENTS_STREAM on cfg; call the result after cfg.Parse.
func HistoryOptions(cfg *config.Loader) func() eventlog.Options {
	maxEvents := cfg.Int("RESUME_MAX_EVENTS", eventlog.DefaultMaxEvents, 1000, 1_000_000, "sequenced events held per user for resume, at least")
	maxAge := cfg.Duration("RESUME_MAX_AGE", eventlog.DefaultMaxAge, "how long sequenced events are held for resume, at least (in memory; JetStream holds RESUME_MAX_EVENTS per user)")
	stream := cfg.String("EVENTS_STREAM", eventlog.DefaultStream, "JetStream stream of the user event log (with a NATS BUS_URL); every process of one deployment must name the same", func(v string) error {
		_, err := eventlog.StreamOptions(v)
		return err
	})
	return func() eventlog.Options {
		js, _ := eventlog.StreamOptions(*stream) // validated by Parse
		return eventlog.Options{MaxEvents: *maxEvents, MaxAge: *maxAge, JetStream: js}
	}
}
