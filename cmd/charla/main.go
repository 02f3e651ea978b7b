// Command charla runs the whole system in one process: the WebSocket edge on EDGE_ADDR and
// the four services on RPC_ADDR, on an embedded SQLite database (or DATABASE_URL) and an
// in-process bus (or BUS_URL). The edge and the services talk through the same Connect
// clients over loopback as when they are deployed apart. With -demo (the default) it
// creates the demo users and contacts if absent and prints one session token per user.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/chatsvc"
	"github.com/charla/charla/edge"
	"github.com/charla/charla/notifysvc"
	"github.com/charla/charla/presencesvc"
	"github.com/charla/charla/profilesvc"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/logging"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/svc"
)

func main() { os.Exit(run()) }

func run() int {
	cfg := config.New("charla")
	edgeConfig := edge.DeclareConfig(cfg)
	rpcAddr := cfg.String("RPC_ADDR", "127.0.0.1:8090", "internal RPC listener for all four services", config.HostPort)
	dbURL := cfg.String("DATABASE_URL", "", "sqlite://PATH (default "+sqldb.DefaultURL+") or mysql://DSN", func(v string) error {
		_, _, err := sqldb.ParseURL(v)
		return err
	})
	busURL := cfg.String("BUS_URL", "", "empty for in-process, nats://host:4222 for NATS", nil)
	token := cfg.String("INTERNAL_API_TOKEN", "", "bearer token required on every internal RPC", nil)
	demo := cfg.Bool("DEMO", true, "create the demo users if absent and print a token for each")
	logFormat := cfg.String("LOG_FORMAT", "text", "json or text", config.OneOf("json", "text"))
	logLevel := cfg.String("LOG_LEVEL", "info", "debug, info, warn or error", config.OneOf("debug", "info", "warn", "error"))
	if err := cfg.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, config.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "charla: configuration: %v\n", err)
		return 2
	}
	root, err := logging.New(os.Stderr, logging.Options{Format: *logFormat, Level: *logLevel})
	if err != nil {
		fmt.Fprintf(os.Stderr, "charla: configuration: %v\n", err)
		return 2
	}
	root = root.With("pid", os.Getpid())
	log := logging.Component(root, "charla")
	if err := rpc.CheckListenAddr("RPC_ADDR", *rpcAddr, *token); err != nil {
		log.Error("refusing to start", "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, root, edgeConfig(), *rpcAddr, *dbURL, *busURL, *token, *demo); err != nil {
		log.Error("stopped", "err", err)
		return 1
	}
	return 0
}

// constructors of the four services, in the order they are built and closed.
var constructors = []struct {
	name string
	new  svc.Constructor
}{
	{"profilesvc", func(ctx context.Context, d svc.Deps) (svc.Service, error) { return profilesvc.New(ctx, d) }},
	{"chatsvc", func(ctx context.Context, d svc.Deps) (svc.Service, error) { return chatsvc.New(ctx, d) }},
	{"notifysvc", func(ctx context.Context, d svc.Deps) (svc.Service, error) { return notifysvc.New(ctx, d) }},
	{"presencesvc", func(ctx context.Context, d svc.Deps) (svc.Service, error) { return presencesvc.New(ctx, d) }},
}

func serve(ctx context.Context, root *slog.Logger, edgeCfg edge.Config, rpcAddr, dbURL, busURL, token string, demo bool) error {
	log := logging.Component(root, "charla")
	b, err := bus.Open(busURL)
	if err != nil {
		return err
	}
	defer b.Close()

	// Listen first, so that the address is known (RPC_ADDR may use port 0) before the
	// clients are built.
	rpcLn, err := net.Listen("tcp", rpcAddr)
	if err != nil {
		return fmt.Errorf("listen on RPC_ADDR %s: %w", rpcAddr, err)
	}
	clients := peers.New(peers.Same(rpcLn.Addr().String()), token, nil)

	var services []rpc.Service
	for _, c := range constructors {
		// Each service opens its own pool on the database, as it would deployed apart.
		db, err := sqldb.Open(ctx, dbURL)
		if err != nil {
			return err
		}
		defer db.Close()
		s, err := c.new(ctx, svc.Deps{
			DB: db, Bus: b, Peers: clients, Log: logging.Component(root, c.name),
			HandlerOptions: []connect.HandlerOption{connect.WithInterceptors(rpc.AuthInterceptor(token))},
		})
		if err != nil {
			return fmt.Errorf("start %s: %w", c.name, err)
		}
		defer s.Close()
		services = append(services, s.RPC())
	}
	rpcSrv := rpc.NewServer(rpc.NewMux(services...))
	errc := make(chan error, 2)
	go func() { errc <- fmt.Errorf("serve RPC: %w", rpcSrv.Serve(rpcLn)) }()
	defer shutdown(rpcSrv, 10*time.Second)
	log.Info("internal RPC listening", "addr", rpcLn.Addr().String())

	if demo {
		if err := seedDemo(ctx, clients, os.Stdout); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
	}

	e, err := edge.New(edgeCfg, clients, logging.Component(root, "edge"))
	if err != nil {
		return err
	}
	edgeLn, err := net.Listen("tcp", edgeCfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on EDGE_ADDR %s: %w", edgeCfg.Addr, err)
	}
	edgeSrv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { errc <- fmt.Errorf("serve edge: %w", edgeSrv.Serve(edgeLn)) }()
	edgeCtx, stopEdge := context.WithCancel(ctx)
	defer stopEdge()
	go func() { _ = e.Run(edgeCtx) }()
	log.Info("edge listening", "addr", edgeLn.Addr().String(), "ws", "ws://"+edgeLn.Addr().String()+"/ws?token=TOKEN")

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	drainCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = edgeSrv.Shutdown(drainCtx)
	if err := e.Shutdown(drainCtx); err != nil {
		log.Warn("edge drain incomplete", "err", err)
	}
	stopEdge()
	return nil
}

func shutdown(srv *http.Server, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
