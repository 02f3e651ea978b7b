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
	"os/signal"
	"syscall"
	"time"

	"github.com/charla/charla/edge"
	"github.com/charla/charla/edge/edgemetrics"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/logging"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	os.Exit(code)
}

// run is the whole process: it returns the exit code once ctx ends (SIGINT or SIGTERM)
// and the edge has drained, or at once when it cannot start. onListen, when not nil, is
// told the listening address (tests listen on port 0).
func run(ctx context.Context, args []string, stderr io.Writer, onListen func(addr string)) int {
	cfg := config.New("edge")
	edgeConfig := edge.DeclareConfig(cfg)
	token := cfg.String("INTERNAL_API_TOKEN", "", "bearer token sent on every internal RPC", nil)
	chatURL := cfg.String("CHAT_URL", "127.0.0.1:8091", "chat service address: host:port, http(s)://host:port, or a comma-separated list of replicas", rpc.CheckTarget)
	profileURL := cfg.String("PROFILE_URL", "127.0.0.1:8092", "profile service address: host:port, http(s)://host:port, or a comma-separated list of replicas", rpc.CheckTarget)
	notifyURL := cfg.String("NOTIFY_URL", "127.0.0.1:8093", "notification service address: host:port, http(s)://host:port, or a comma-separated list of replicas", rpc.CheckTarget)
	presenceURL := cfg.String("PRESENCE_URL", "127.0.0.1:8094", "presence service address: host:port, http(s)://host:port, or a comma-separated list of replicas", rpc.CheckTarget)
	logFormat := cfg.String("LOG_FORMAT", "text", "json or text", config.OneOf("json", "text"))
	logLevel := cfg.String("LOG_LEVEL", "info", "debug, info, warn or error", config.OneOf("debug", "info", "warn", "error"))
	if err := cfg.Parse(args); err != nil {
		if config.Exit(err) {
			return 0
		}
		fmt.Fprintf(stderr, "edge: configuration: %v\n", err)
		return 2
	}
	root, err := logging.New(stderr, logging.Options{Format: *logFormat, Level: *logLevel})
	if err != nil {
		fmt.Fprintf(stderr, "edge: configuration: %v\n", err)
		return 2
	}
	// "pid" is the client's request id in every log line; the OS process id has its own key.
	log := logging.Component(root, "edge").With("process_id", os.Getpid())
	tel, err := telemetry.Setup(ctx, "edge")
	if err != nil {
		log.Error("refusing to start", "err", err)
		return 2
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(shutdownCtx); err != nil {
			log.Warn("telemetry shutdown", "err", err)
		}
	}()
	log.Info("telemetry", "tracing", tel.TracingEnabled(), "service_name", tel.ServiceName())
	urls := peers.URLs{Chat: *chatURL, Profile: *profileURL, Notify: *notifyURL, Presence: *presenceURL}
	if err := serve(ctx, log, tel, edgeConfig(), urls, *token, onListen); err != nil {
		log.Error("stopped", "err", err)
		return 1
	}
	return 0
}

// serve runs the edge until ctx ends, then drains it: connections are closed with 1001
// (and /ready answers 503) before the listener stops.
func serve(ctx context.Context, log *slog.Logger, tel *telemetry.Telemetry, ec edge.Config, urls peers.URLs, token string, onListen func(string)) error {
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
