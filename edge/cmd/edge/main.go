// Command edge runs the WebSocket edge as its own process. Configuration: see the README.
//
// Like every Charla process it serves GET /metrics (on EDGE_ADDR, beside /ws, /health and
// /ready) and exports traces over OTLP when the standard OTEL_* variables ask for it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/charla/charla/edge"
	"github.com/charla/charla/edge/edgemetrics"
	"github.com/charla/charla/shared/boot"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/telemetry"
)

func main() {
	ctx, stop := boot.Signals()
	code := run(ctx, stop, os.Args[1:], os.Stderr, nil)
	stop()
	os.Exit(code)
}

// run is the whole process: it returns the exit code once ctx ends (SIGINT or SIGTERM)
// and the edge has drained, or at once when it cannot start. stopSignals restores the
// default signal handling once draining starts, so that a second Ctrl-C ends the process
// at once. onListen, when not nil, is told the listening address (tests listen on port 0).
func run(ctx context.Context, stopSignals func(), args []string, stderr io.Writer, onListen func(addr string)) int {
	p := boot.New("edge", stderr)
	edgeConfig := edge.DeclareConfig(p.Config)
	token := boot.Token(p.Config)
	urls := boot.PeerURLs(p.Config)
	if code, ok := p.Start(ctx, args); !ok {
		return code
	}
	defer p.Close()
	if err := serve(ctx, stopSignals, p.Log, p.Telemetry, edgeConfig(), urls(), *token, onListen); err != nil {
		p.Log.Error("stopped", "err", err)
		return boot.ExitFailed
	}
	return boot.ExitOK
}

// serve runs the edge until ctx ends, then drains it: connections are closed with 1001
// (and /ready answers 503) before the listener stops.
func serve(ctx context.Context, stopSignals func(), log *slog.Logger, tel *telemetry.Telemetry, ec edge.Config, urls peers.URLs, token string, onListen func(string)) error {
	ec.Metrics = edgemetrics.New(tel)
	clients := peers.New(urls, token, nil, tel.ConnectClientOptions()...)
	defer clients.Close()
	e, err := edge.New(ec, clients, log)
	if err != nil {
		return err
	}
	e.Handle("GET /metrics", tel.MetricsHandler())
	ln, err := net.Listen("tcp", ec.Addr)
	if err != nil {
		return fmt.Errorf("listen on EDGE_ADDR %s: %w", ec.Addr, err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		_ = e.Run(runCtx)
	}()
	srv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("edge listening", "addr", ln.Addr().String())
	if onListen != nil {
		onListen(ln.Addr().String())
	}
	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("serve EDGE_ADDR: %w", err)
	case <-ctx.Done():
		stopSignals()
		log.Info("draining", "timeout", ec.DrainTimeout)
	}
	drain, cancel := context.WithTimeout(context.Background(), ec.DrainTimeout)
	defer cancel()
	if err := e.Shutdown(drain); err != nil {
		log.Warn("drain incomplete", "err", err)
	}
	if err := srv.Shutdown(drain); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("listener shutdown", "err", err)
	}
	stopRun()
	<-runDone
	return serveErr
}
