// Command charla runs the whole system in one process: the WebSocket edge on EDGE_ADDR and
// the four services on RPC_ADDR, on an embedded SQLite database (or DATABASE_URL) and an
// in-process bus (or BUS_URL). The edge and the services talk through the same Connect
// clients over loopback as when they are deployed apart. With DEMO=true (the default) it
// creates the demo users and contacts if absent, prints one session token per user and, when
// the edge listens on loopback, lets the web app at / sign in as a demo user (demohttp.go).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/charla/charla/cmd/internal/system"
	"github.com/charla/charla/edge"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/logging"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, stop, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole process: it serves until ctx ends (SIGINT or SIGTERM), drains and returns
// the exit code, 0 after an interrupt. stopSignals restores the default signal handling, so
// that a second Ctrl-C ends the process at once. The banner goes to stdout, logs to stderr.
func run(ctx context.Context, stopSignals func(), args []string, stdout, stderr io.Writer) int {
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
	if err := cfg.Parse(args); err != nil {
		if config.Exit(err) {
			return 0
		}
		fmt.Fprintf(stderr, "charla: configuration: %v\n", err)
		return 2
	}
	root, err := logging.New(stderr, logging.Options{Format: *logFormat, Level: *logLevel})
	if err != nil {
		fmt.Fprintf(stderr, "charla: configuration: %v\n", err)
		return 2
	}
	// "pid" in logs is the client's request id (docs/protocol.md §3.2); the OS process is process_id.
	root = root.With("process_id", os.Getpid())
	log := logging.Component(root, "charla")
	if err := rpc.CheckListenAddr("RPC_ADDR", *rpcAddr, *token); err != nil {
		log.Error("refusing to start", "err", err)
		return 2
	}
	tel, err := telemetry.Setup(ctx, "charla")
	if err != nil {
		log.Error("refusing to start", "err", err)
		return 2
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(shutdownCtx)
	}()
	b, err := bus.Open(*busURL, bus.WithLogger(log), bus.WithMeterProvider(tel.MeterProvider()))
	if err != nil {
		log.Error("refusing to start", "err", err)
		return 2
	}
	defer b.Close()
	ec := edgeConfig()
	opts := system.Options{
		Edge: ec, RPCAddr: *rpcAddr, DatabaseURL: *dbURL, Bus: b, Token: *token, Log: root, Telemetry: tel,
	}
	if err := serve(ctx, log, opts, *demo, ec.DrainTimeout, stopSignals, stdout); err != nil {
		if ctx.Err() != nil { // interrupted while starting: not a failure
			log.Info("stopped before start-up finished")
			return 0
		}
		log.Error("stopped", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, log *slog.Logger, opts system.Options, demo bool, drain time.Duration, stopSignals func(), stdout io.Writer) error {
	s, err := system.StartServices(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		drainCtx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		s.Close(drainCtx)
	}()
	if err := s.StartEdge(opts); err != nil {
		return err
	}
	b := banner{edgeAddr: s.EdgeAddr, rpcAddr: s.RPCAddr, demo: demo}
	if demo {
		if b.tokens, err = seedDemo(ctx, s.Clients); err != nil {
			if ctx.Err() != nil {
				return nil // interrupted while seeding
			}
			return fmt.Errorf("demo data: %w", err)
		}
		if demoRoutesAllowed(demo, s.EdgeAddr) {
			mountDemoRoutes(s.Edge.Handle, s.Clients)
			fmt.Fprintf(os.Stdout, "Web app: http://%s/ (pick a demo user to sign in)\n", s.EdgeAddr)
		} else {
			log.Warn("demo sign-in disabled: EDGE_ADDR is not a loopback address", "edge_addr", s.EdgeAddr)
		}
	}
	b.print(stdout)
	select {
	case err := <-s.Err():
		return err
	case <-ctx.Done():
		// A second Ctrl-C ends the process at once instead of waiting for the drain.
		stopSignals()
		log.Info("shutting down (Ctrl-C again to force)", "drain_timeout", drain)
		return nil
	}
}
