package peers_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"go.uber.org/goleak"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/rpc"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// presence counts the GetPresence calls it answers.
type presence struct {
	presencev1connect.UnimplementedPresenceServiceHandler
	calls atomic.Int64
}

func (p *presence) GetPresence(context.Context, *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error) {
	p.calls.Add(1)
	return connect.NewResponse(&presencev1.GetPresenceResponse{}), nil
}

// serve starts a presence replica that requires token and returns its host:port.
func serve(t *testing.T, p *presence, token string) string {
	t.Helper()
	path, h := presencev1connect.NewPresenceServiceHandler(p, connect.WithInterceptors(rpc.AuthInterceptor(token)))
	srv := httptest.NewUnstartedServer(rpc.NewMux(rpc.Service{Name: presencev1connect.PresenceServiceName, Path: path, Handler: h}))
	srv.Config.Protocols = rpc.Protocols()
	srv.Start()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestClientsSpreadOverReplicas(t *testing.T) {
	a, b := &presence{}, &presence{}
	urls := peers.Same("127.0.0.1:1")
	urls.Presence = serve(t, a, "tok") + ", http://" + serve(t, b, "tok")
	c := peers.New(urls, "tok", nil)
	defer c.Close()
	for range 6 {
		if _, err := c.Presence.GetPresence(context.Background(), connect.NewRequest(&presencev1.GetPresenceRequest{})); err != nil {
			t.Fatal(err)
		}
	}
	if got1, got2 := a.calls.Load(), b.calls.Load(); got1 != 3 || got2 != 3 {
		t.Errorf("calls = %d and %d, want 3 and 3", got1, got2)
	}
}

func TestClientsOfABadAddressFailWithTheReason(t *testing.T) {
	urls := peers.Same("127.0.0.1:1")
	urls.Chat = "10.0.0.1:8091,"
	c := peers.New(urls, "", nil)
	defer c.Close()
	_, err := c.Presence.GetPresence(context.Background(), connect.NewRequest(&presencev1.GetPresenceRequest{}))
	if !rpc.IsUnavailable(err) {
		t.Errorf("call to a closed port: %v, want unavailable", err)
	}
	_, err = c.Chat.ListContactIds(context.Background(), connect.NewRequest(&chatv1.ListContactIdsRequest{}))
	if err == nil || !strings.Contains(err.Error(), `chat service address "10.0.0.1:8091,": entry 2 of 2`) {
		t.Errorf("call to a bad address: %v, want the reason", err)
	}
}
