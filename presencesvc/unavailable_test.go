package presencesvc

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// TestDatabaseOutageIsUnavailable: with the database out of reach, leases, connections and
// route lookups answer unavailable (retry), never internal.
func TestDatabaseOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	url, proxy := dbtest.NewCuttableMySQL(t)
	h := newHarness(t, url)
	h.register(t, "e1")
	h.connect(t, "e1", alice, "a-1")

	proxy.Cut()
	if got, want := codeOf(h.heartbeat("e1")), connect.CodeUnavailable; got != want {
		t.Fatalf("Heartbeat with the database away: code %v, want %v", got, want)
	}
	_, err := h.client.Connect(context.Background(), connect.NewRequest(&presencev1.ConnectRequest{EdgeId: "e1", UserId: bob, ConnectionId: "b-1"}))
	if got, want := codeOf(err), connect.CodeUnavailable; got != want {
		t.Fatalf("Connect with the database away: code %v (%v), want %v", got, err, want)
	}
	_, err = h.client.GetRoutes(context.Background(), connect.NewRequest(&presencev1.GetRoutesRequest{UserIds: []int64{alice}}))
	if got, want := codeOf(err), connect.CodeUnavailable; got != want {
		t.Fatalf("GetRoutes with the database away: code %v (%v), want %v", got, err, want)
	}
}
