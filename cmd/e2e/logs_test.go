package e2e

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/gorilla/websocket"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/logging/logtest"
	"github.com/charla/charla/shared/peers"

	"github.com/charla/charla/cmd/internal/system"
	"github.com/charla/charla/cmd/internal/system/systemtest"
)

// TestNoTokenInLogs fails authentication every way a client can, with debug logging on,
// and finds neither the session token nor the internal API token in any log line.
func TestNoTokenInLogs(t *testing.T) {
	t.Parallel()
	const (
		internalToken = "itok-5e1f0c7d2b9a4e68"
		sessionToken  = "stok-a91c3e7f0d2b5846"
	)
	log, rec := logtest.New(t)
	sys := systemtest.Start(t, systemtest.Options{Options: func(o *system.Options) {
		o.Token = internalToken
		o.Log = log
	}})
	ctx := context.Background()

	// An unknown session token, through the edge's own path to the profile service.
	if _, err := sys.Clients.Profile.ResolveSession(ctx, connect.NewRequest(&profilev1.ResolveSessionRequest{Token: sessionToken})); err == nil {
		t.Fatal("ResolveSession of an unknown token succeeded")
	}
	// A wrong internal token.
	wrong := peers.New(peers.Same(sys.RPCAddr), sessionToken, nil)
	if _, err := wrong.Profile.ResolveSession(ctx, connect.NewRequest(&profilev1.ResolveSessionRequest{Token: internalToken})); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("call with a wrong internal token: got %v, want unauthenticated", err)
	}
	// The WebSocket handshake with an unknown token.
	conn, res, err := websocket.DefaultDialer.Dial(sys.URL(sessionToken), http.Header{"Authorization": {"Bearer " + sessionToken}})
	if err == nil {
		conn.Close()
		t.Fatal("WebSocket handshake with an unknown token succeeded")
	}
	if res != nil && res.StatusCode == http.StatusNotFound {
		t.Log("the edge serves no /ws yet: the handshake part checked nothing")
	}

	if rec.String() == "" {
		t.Fatal("nothing was logged; the capture is not wired")
	}
	for _, tok := range []string{internalToken, sessionToken} {
		if rec.Contains(tok) {
			t.Errorf("token %s appears in the log", tok)
		}
	}
}
