package server_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/profilesvc/internal/server"
	"github.com/charla/charla/profilesvc/internal/store"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// TestDatabaseOutageIsUnavailable: with the database out of reach, the handshake's session
// lookup and every other call answer unavailable (503 at the edge), never internal.
func TestDatabaseOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, proxy := dbtest.NewCuttableMySQL(t)
	db := dbtest.OpenURL(t, url)
	if err := store.Migrate(ctx, db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	srv := server.New(server.Config{
		Store:    store.New(db),
		Contacts: &fakeContacts{ids: map[int64][]int64{}},
		Presence: &fakePresence{state: map[int64]*presencev1.Presence{}},
		Events:   &fakeEvents{},
		Log:      slog.New(slog.DiscardHandler),
		Now:      time.Now,
	})
	path, h := profilev1connect.NewProfileServiceHandler(srv)
	hs := httptest.NewServer(rpc.NewMux(rpc.Service{Name: profilev1connect.ProfileServiceName, Path: path, Handler: h}))
	t.Cleanup(hs.Close)
	client := profilev1connect.NewProfileServiceClient(hs.Client(), hs.URL)

	u, err := client.CreateUser(ctx, connect.NewRequest(&profilev1.CreateUserRequest{UserName: "ana", FirstName: "Ana", LastName: "B", Email: "ana@example.com"}))
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	s, err := client.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{UserId: u.Msg.GetUser().GetId()}))
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}

	proxy.Cut()
	_, err = client.ResolveSession(ctx, connect.NewRequest(&profilev1.ResolveSessionRequest{Token: s.Msg.GetToken()}))
	if got := connect.CodeOf(err); err == nil || got != connect.CodeUnavailable {
		t.Fatalf("ResolveSession with the database away: got %v (%v), want unavailable", got, err)
	}
	// The batch form fails as a whole: no token gets "unauthenticated" for the outage.
	_, err = client.ResolveSessions(ctx, connect.NewRequest(&profilev1.ResolveSessionsRequest{Tokens: []string{s.Msg.GetToken(), ""}}))
	if got := connect.CodeOf(err); err == nil || got != connect.CodeUnavailable {
		t.Fatalf("ResolveSessions with the database away: got %v (%v), want unavailable", got, err)
	}
	_, err = client.CreateUser(ctx, connect.NewRequest(&profilev1.CreateUserRequest{UserName: "bea", FirstName: "Bea", LastName: "C", Email: "bea@example.com"}))
	if got := connect.CodeOf(err); err == nil || got != connect.CodeUnavailable {
		t.Fatalf("CreateUser with the database away: got %v (%v), want unavailable", got, err)
	}
}
