package notifysvc

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
	"github.com/charla/charla/shared/svc"
)

// fakeProfile is the profile service as this service sees it: GetUsers knows users 1–10.
// The other methods are left to the embedded (nil) interface and panic if called.
type fakeProfile struct {
	profilev1connect.ProfileServiceClient
}

func (fakeProfile) GetUsers(_ context.Context, req *connect.Request[profilev1.GetUsersRequest]) (*connect.Response[profilev1.GetUsersResponse], error) {
	res := &profilev1.GetUsersResponse{}
	for _, id := range req.Msg.GetUserIds() {
		if id >= 1 && id <= 10 {
			res.Users = append(res.Users, &profilev1.User{Id: id})
		}
	}
	return connect.NewResponse(res), nil
}

const testEdge = "edge-a"

// onEdge routes user 1 to testEdge; everyone else is offline.
var onEdge = fanout.RouteLookupFunc(func(_ context.Context, ids []int64) (map[int64][]string, error) {
	m := map[int64][]string{}
	for _, id := range ids {
		if id == 1 {
			m[id] = []string{testEdge}
		}
	}
	return m, nil
})

// startService builds the service on db with opts (Routes defaults to onEdge), serves it
// over HTTP/2 and returns a client of it.
func startService(tb testing.TB, db *sqldb.DB, opts Options) notifyv1connect.NotificationServiceClient {
	tb.Helper()
	if opts.Routes == nil {
		opts.Routes = onEdge
	}
	b := bus.NewInProcess()
	tb.Cleanup(func() { b.Close() })
	s, err := NewWithOptions(context.Background(), svc.Deps{
		DB: db, Bus: b, Log: slog.New(slog.DiscardHandler),
		Peers: &peers.Clients{Profile: fakeProfile{}},
	}, opts)
	if err != nil {
		tb.Fatalf("NewWithOptions: %v", err)
	}
	// Cleartext HTTP/2, as the internal listeners and clients speak it (rpc.NewServer,
	// rpc.NewHTTPClient).
	srv := httptest.NewUnstartedServer(rpc.NewMux(s.RPC()))
	srv.Config.Protocols = rpc.Protocols()
	srv.Start()
	httpClient := rpc.NewHTTPClient()
	tb.Cleanup(func() {
		httpClient.CloseIdleConnections()
		srv.Close()
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return notifyv1connect.NewNotificationServiceClient(httpClient, srv.URL)
}

func TestOptionsFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    Options
		wantErr string // the variable the error must name
	}{
		{"defaults", nil, Options{}, ""},
		{"both", map[string]string{EnvRetentionMaxAge: "2160h", EnvRetentionMaxPerUser: "1000"},
			Options{RetentionMaxAge: 2160 * time.Hour, RetentionMaxPerUser: 1000}, ""},
		{"bad age", map[string]string{EnvRetentionMaxAge: "90d"}, Options{}, EnvRetentionMaxAge},
		{"zero age", map[string]string{EnvRetentionMaxAge: "0s"}, Options{}, EnvRetentionMaxAge},
		{"negative age", map[string]string{EnvRetentionMaxAge: "-1h"}, Options{}, EnvRetentionMaxAge},
		{"bad count", map[string]string{EnvRetentionMaxPerUser: "many"}, Options{}, EnvRetentionMaxPerUser},
		{"zero count", map[string]string{EnvRetentionMaxPerUser: "0"}, Options{}, EnvRetentionMaxPerUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := OptionsFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error: got %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.RetentionMaxAge != tt.want.RetentionMaxAge || got.RetentionMaxPerUser != tt.want.RetentionMaxPerUser {
				t.Fatalf("got %+v, %v; want %+v, nil", got, err, tt.want)
			}
		})
	}
}

// TestNewRejectsBadEnv cannot run in parallel: it sets the process environment.
func TestNewRejectsBadEnv(t *testing.T) {
	t.Setenv(EnvRetentionMaxPerUser, "-3")
	_, err := New(context.Background(), svc.Deps{})
	if err == nil || !strings.Contains(err.Error(), EnvRetentionMaxPerUser) {
		t.Fatalf("New: got %v, want an error naming %s", err, EnvRetentionMaxPerUser)
	}
}

// TestLivePush opens StreamEvents over the RPC, as an edge does, while creating
// notifications until one arrives: the stream subscribes asynchronously, so the first ones may come
// before it listens (the bus is at-most-once; they are stored all the same).
func TestLivePush(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		client := startService(t, dbtest.OpenURL(t, url), Options{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var mu sync.Mutex
		created := map[int64]bool{}
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				// User 3 is offline: their notification must never reach the edge.
				if _, err := client.CreateNotification(ctx, connect.NewRequest(&notifyv1.CreateNotificationRequest{UserId: 3, Type: "t", Title: "offline"})); err != nil && ctx.Err() == nil {
					t.Errorf("CreateNotification for user 3: %v", err)
				}
				res, err := client.CreateNotification(ctx, connect.NewRequest(&notifyv1.CreateNotificationRequest{UserId: 1, Type: "contact_added", Title: "online"}))
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("CreateNotification: %v", err)
					}
					return
				}
				mu.Lock()
				created[res.Msg.GetNotification().GetId()] = true
				mu.Unlock()
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
		// The stream opens while the notifications are being created; the first message is
		// fanout's empty "subscribed" marker, then come the events published after it.
		stream, err := client.StreamEvents(ctx, connect.NewRequest(&notifyv1.StreamEventsRequest{EdgeId: testEdge}))
		if err != nil {
			close(done)
			wg.Wait()
			t.Fatalf("StreamEvents: %v", err)
		}
		defer stream.Close()
		var ev *notifyv1.StreamEventsResponse
		for ev == nil && stream.Receive() {
			if stream.Msg().GetEvent() != nil {
				ev = stream.Msg()
			}
		}
		close(done)
		wg.Wait()
		if ev == nil {
			t.Fatalf("stream ended: %v", stream.Err())
		}
		n := ev.GetNewNotification()
		mu.Lock()
		ok := created[n.GetId()]
		mu.Unlock()
		if !ok || n.GetUserId() != 1 || n.GetTitle() != "online" || n.GetType() != "contact_added" {
			t.Fatalf("event: got %v, want NEW_NOTIFICATION of one of user 1's notifications", ev)
		}
		if got := ev.GetUserIds(); len(got) != 1 || got[0] != 1 {
			t.Fatalf("event user_ids: got %v, want [1]", got)
		}
	})
}

func TestStreamEventsRejectsBadEdge(t *testing.T) {
	t.Parallel()
	client := startService(t, dbtest.Open(t, sqldb.SQLite), Options{})
	stream, err := client.StreamEvents(context.Background(), connect.NewRequest(&notifyv1.StreamEventsRequest{EdgeId: "bad edge!"}))
	if err != nil {
		t.Fatalf("StreamEvents: %v", err)
	}
	defer stream.Close()
	if stream.Receive() {
		t.Fatalf("got an event, want an error")
	}
	if got := connect.CodeOf(stream.Err()); got != connect.CodeInvalidArgument {
		t.Fatalf("error: got %v (%v), want invalid_argument", got, stream.Err())
	}
}

func TestNewNeedsDeps(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, sqldb.SQLite)
	b := bus.NewInProcess()
	log := slog.New(slog.DiscardHandler)
	for _, deps := range []svc.Deps{
		{Bus: b, Log: log, Peers: &peers.Clients{Profile: fakeProfile{}}},
		{DB: db, Bus: b, Log: log},
		{DB: db, Bus: b, Log: log, Peers: &peers.Clients{Profile: fakeProfile{}}}, // no presence, no Routes
	} {
		if s, err := NewWithOptions(context.Background(), deps, Options{}); err == nil {
			s.Close()
			t.Errorf("NewWithOptions(%+v): got nil error, want one", deps)
		}
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	t.Parallel()
	s, err := NewWithOptions(context.Background(), svc.Deps{
		DB: dbtest.Open(t, sqldb.SQLite), Bus: bus.NewInProcess(), Log: slog.New(slog.DiscardHandler),
		Peers: &peers.Clients{Profile: fakeProfile{}},
	}, Options{Routes: onEdge, PruneInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	// After Close the handler still answers (the caller closes the database after it).
	_, err = s.CreateNotification(context.Background(), connect.NewRequest(&notifyv1.CreateNotificationRequest{UserId: 42, Type: "t", Title: "t"}))
	if got := connect.CodeOf(err); !errors.As(err, new(*connect.Error)) || got != connect.CodeNotFound {
		t.Fatalf("after Close, unknown user: got %v, want not_found", err)
	}
}
