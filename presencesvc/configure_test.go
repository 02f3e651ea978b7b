package presencesvc

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
	"github.com/charla/charla/shared/svc"
)

// chatClient is the chat client of peers.Clients over a fakeChat.
type chatClient struct {
	chatv1connect.ChatServiceClient
	f *fakeChat
}

func (c chatClient) ListContactIds(ctx context.Context, req *connect.Request[chatv1.ListContactIdsRequest]) (*connect.Response[chatv1.ListContactIdsResponse], error) {
	return c.f.ListContactIds(ctx, req)
}

func (c chatClient) StopTyping(ctx context.Context, req *connect.Request[chatv1.StopTypingRequest]) (*connect.Response[chatv1.StopTypingResponse], error) {
	return c.f.StopTyping(ctx, req)
}

// TestConfigure: MAX_CONNECTIONS_PER_USER comes through the process's configuration
// (flags here; .env and the environment alike), a bad value is refused naming it, and the
// constructor builds the service with what was parsed.
func TestConfigure(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args    []string
		want    int
		wantErr bool
	}{
		{nil, DefaultMaxConnectionsPerUser, false},
		{[]string{"-max-connections-per-user", "3"}, 3, false},
		{[]string{"-max-connections-per-user", "0"}, 0, true},
		{[]string{"-max-connections-per-user", "many"}, 0, true},
	} {
		cfg := config.New("presencesvc")
		newService := Configure(cfg)
		err := cfg.Parse(tt.args)
		if tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), "MAX_CONNECTIONS_PER_USER") {
				t.Errorf("Parse(%q): got %v, want an error naming MAX_CONNECTIONS_PER_USER", tt.args, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.args, err)
		}
		b := bus.NewInProcess()
		service, err := newService(context.Background(), svc.Deps{
			DB: dbtest.Open(t, sqldb.SQLite), Bus: b, Events: eventlog.NewMemory(eventlog.Options{}),
			Log: slog.New(slog.DiscardHandler), Peers: &peers.Clients{Chat: chatClient{f: newFakeChat()}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := service.(*Service).opts.MaxConnectionsPerUser; got != tt.want {
			t.Errorf("Parse(%q): MaxConnectionsPerUser = %d, want %d", tt.args, got, tt.want)
		}
		if err := service.Close(); err != nil {
			t.Error(err)
		}
		b.Close()
	}
}
