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
	"time"

	"github.com/charla/charla/cmd/internal/system"
	"github.com/charla/charla/edge"
	"github.com/charla/charla/shared/boot"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/svc"
)

func main() {
	ctx, stop := boot.Signals()
	code := run(ctx, stop, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole process: it serves until ctx ends (SIGINT or SIGTERM), drains and returns
// the exit code, 0 after an interrupt. stopSignals restores the default signal handling, so
// that a second Ctrl-C ends the process at once. The banner goes to stdout, logs to stderr.
func run(ctx context.Context, stopSignals func(), args []string, stdout, stderr io.Writer) int {
	p := boot.New("charla", stderr)
	edgeConfig := edge.DeclareConfig(p.Config)
	rpcAddr := p.Config.String("RPC_ADDR", "127.0.0.1:8090", "internal RPC listener for all four services", config.HostPort)
	backends := svc.DeclareBackends(p.Config)
	token := boot.Token(p.Config)
	services := system.ConfigureServices(p.Config)
	demo := p.Config.Bool("DEMO", true, "create the demo users if absent and print a token for each")
	if code, ok := p.Start(ctx, args); !ok {
		return code
	}
	defer p.Close()
	log := p.Log
	if err := rpc.CheckListenAddr("RPC_ADDR", *rpcAddr, *token); err != nil {
		log.Error("refusing to start", "err", err)
		return boot.ExitConfig
	}
	be := backends()
	b, err := bus.Open(be.BusURL, bus.WithLogger(log), bus.WithMeterProvider(p.Telemetry.MeterProvider()))
	if err != nil {
		log.Error("refusing to start", "err", err)
		return boot.ExitConfig
	}
	defer b.Close()
	ec := edgeConfig()
	opts := system.Options{
		Edge: ec, RPCAddr: *rpcAddr, DatabaseURL: be.DatabaseURL, Bus: b, History: be.History, Token: *token,
		Log: p.Root, Telemetry: p.Telemetry, Services: services,
	}
	if err := serve(ctx, log, opts, *demo, ec.DrainTimeout, stopSignals, stdout); err != nil {
		if ctx.Err() != nil { // interrupted while starting: not a failure
			log.Info("stopped before start-up finished")
			return boot.ExitOK
		}
		log.Error("stopped", "err", err)
		return boot.ExitFailed
	}
	return boot.ExitOK
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
			fmt.Fprintf(stdout, "Web app: http://%s/ (pick a demo user to sign in)\n", s.EdgeAddr)
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
