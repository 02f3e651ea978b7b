// Command edge runs the WebSocket edge as its own process. Configuration: see the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/charla/charla/edge"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/logging"
	"github.com/charla/charla/shared/peers"
)

func main() {
	cfg := config.New("edge")
	edgeConfig := edge.DeclareConfig(cfg)
	token := cfg.String("INTERNAL_API_TOKEN", "", "bearer token sent on every internal RPC", nil)
	chatURL := cfg.String("CHAT_URL", "127.0.0.1:8091", "chat service address", nil)
	profileURL := cfg.String("PROFILE_URL", "127.0.0.1:8092", "profile service address", nil)
	notifyURL := cfg.String("NOTIFY_URL", "127.0.0.1:8093", "notification service address", nil)
	presenceURL := cfg.String("PRESENCE_URL", "127.0.0.1:8094", "presence service address", nil)
	logFormat := cfg.String("LOG_FORMAT", "text", "json or text", config.OneOf("json", "text"))
	logLevel := cfg.String("LOG_LEVEL", "info", "debug, info, warn or error", config.OneOf("debug", "info", "warn", "error"))
	if err := cfg.Parse(os.Args[1:]); err != nil {
		if config.Exit(err) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "edge: configuration: %v\n", err)
		os.Exit(2)
	}
	root, err := logging.New(os.Stderr, logging.Options{Format: *logFormat, Level: *logLevel})
	if err != nil {
		fmt.Fprintf(os.Stderr, "edge: configuration: %v\n", err)
		os.Exit(2)
	}
	log := logging.Component(root, "edge").With("pid", os.Getpid())
	clients := peers.New(peers.URLs{Chat: *chatURL, Profile: *profileURL, Notify: *notifyURL, Presence: *presenceURL}, *token, nil)
	ec := edgeConfig()
	e, err := edge.New(ec, clients, log)
	if err != nil {
		log.Error("start", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: ec.Addr, Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.Run(ctx) }()
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve", "err", err)
			stop()
		}
	}()
	log.Info("edge listening", "addr", ec.Addr)
	<-ctx.Done()
	drain, cancel := context.WithTimeout(context.Background(), ec.DrainTimeout)
	defer cancel()
	_ = srv.Shutdown(drain)
	_ = e.Shutdown(drain)
}
