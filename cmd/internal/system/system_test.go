package system_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"

	"github.com/charla/charla/cmd/internal/system"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/rpc"
)

// startServices runs the four services (no edge) on a fresh SQLite database.
func startServices(t *testing.T, token string) *system.System {
	t.Helper()
	s, err := system.StartServices(context.Background(), system.Options{
		RPCAddr:     "127.0.0.1:0",
		DatabaseURL: "sqlite://" + filepath.Join(t.TempDir(), "charla.db"),
		Token:       token,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// TestEveryServiceOverEveryProtocol calls one RPC of each service over Connect, gRPC and
// gRPC-Web, with the internal token, and checks that a call without it is refused.
func TestEveryServiceOverEveryProtocol(t *testing.T) {
	t.Parallel()
	const token = "internal-secret"
	s := startServices(t, token)
	ctx := context.Background()
	protocols := map[string]connect.ClientOption{
		"connect": connect.WithProtoJSON(), "grpc": connect.WithGRPC(), "grpcweb": connect.WithGRPCWeb(),
	}
	for name, opt := range protocols {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := peers.New(peers.Same(s.RPCAddr), token, nil, opt)
			countries, err := c.Profile.ListCountries(ctx, connect.NewRequest(&profilev1.ListCountriesRequest{}))
			if err != nil {
				t.Fatalf("profile ListCountries: %v", err)
			}
			if n := len(countries.Msg.GetCountries()); n < 240 {
				t.Errorf("ListCountries returned %d countries, want the full ISO 3166-1 list", n)
			}
			contacts, err := c.Chat.ListContactIds(ctx, connect.NewRequest(&chatv1.ListContactIdsRequest{}))
			if err != nil {
				t.Fatalf("chat ListContactIds: %v", err)
			}
			if n := len(contacts.Msg.GetContacts()); n != 0 {
				t.Errorf("ListContactIds of nobody returned %d entries, want 0", n)
			}
			presence, err := c.Presence.GetPresence(ctx, connect.NewRequest(&presencev1.GetPresenceRequest{UserIds: []int64{42}}))
			if err != nil {
				t.Fatalf("presence GetPresence: %v", err)
			}
			if p := presence.Msg.GetPresences(); len(p) != 1 || p[0].GetUserId() != 42 || p[0].GetIsOnline() {
				t.Errorf("GetPresence(42) = %v, want one offline entry for 42", p)
			}
			_, err = c.Notify.ListNotifications(ctx, connect.NewRequest(&notifyv1.ListNotificationsRequest{UserId: 42, Limit: 500}))
			if got := connect.CodeOf(err); got != connect.CodeInvalidArgument {
				t.Errorf("notify ListNotifications with limit 500: %v, want invalid_argument", err)
			}

			anonymous := peers.New(peers.Same(s.RPCAddr), "", nil, opt)
			_, err = anonymous.Profile.ListCountries(ctx, connect.NewRequest(&profilev1.ListCountriesRequest{}))
			if got := connect.CodeOf(err); got != connect.CodeUnauthenticated {
				t.Errorf("call without the token: %v, want unauthenticated", err)
			}
		})
	}
}

// TestPlainCurlStyleJSON is what `curl -d '{}'` does: an HTTP/1.1 POST of JSON.
func TestPlainCurlStyleJSON(t *testing.T) {
	t.Parallel()
	s := startServices(t, "")
	res, err := http.Post("http://"+s.RPCAddr+"/profile.v1.ProfileService/ListCountries", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"name":"Spain"`) {
		t.Errorf("status %d body %.200s, want 200 with Spain listed", res.StatusCode, body)
	}
	for _, svc := range []string{"chat.v1.ChatService", "profile.v1.ProfileService", "notify.v1.NotificationService", "presence.v1.PresenceService"} {
		res, err := http.Post("http://"+s.RPCAddr+"/grpc.health.v1.Health/Check", "application/json", strings.NewReader(`{"service":"`+svc+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "SERVING") {
			t.Errorf("health of %s: status %d body %s, want SERVING", svc, res.StatusCode, body)
		}
	}
	// Reflection lists the services (what grpcurl list and buf curl use).
	stream := grpcreflect.NewClient(rpc.NewHTTPClient(), "http://"+s.RPCAddr, connect.WithGRPC()).NewStream(context.Background())
	defer stream.Close()
	names, err := stream.ListServices()
	if err != nil {
		t.Fatalf("reflection ListServices: %v", err)
	}
	got := fmt.Sprint(names)
	for _, want := range []string{"chat.v1.ChatService", "profile.v1.ProfileService", "notify.v1.NotificationService", "presence.v1.PresenceService"} {
		if !strings.Contains(got, want) {
			t.Errorf("reflection lists %s, want %s among them", got, want)
		}
	}
}
