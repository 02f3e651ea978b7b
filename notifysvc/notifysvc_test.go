package notifysvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/charla/charla/notifysvc/internal/retention"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/rpc/rpctest"
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

// startService builds the service on db with opts and a fresh in-memory event log, serves
// it over HTTP/2 and returns a client of it.
func startService(tb testing.TB, db *sqldb.DB, opts Options) notifyv1connect.NotificationServiceClient {
	tb.Helper()
	return startServiceWithLog(tb, db, eventlog.NewMemory(eventlog.Options{}), opts)
}

// startServiceWithLog is startService with the given user event log.
func startServiceWithLog(tb testing.TB, db *sqldb.DB, events eventlog.Log, opts Options) notifyv1connect.NotificationServiceClient {
	tb.Helper()
	b := bus.NewInProcess()
	tb.Cleanup(func() { b.Close() })
	s, err := NewWithOptions(context.Background(), svc.Deps{
		DB: db, Bus: b, Events: events, Log: slog.New(slog.DiscardHandler),
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

// TestConfigure: the retention settings come through the process's configuration
// (flags here; .env and the environment alike), bad values are refused naming the
// variable, and the constructor builds the service with what was parsed.
func TestConfigure(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		args    []string
		want    Options
		wantErr string // the variable the error must name
	}{
		{"defaults", nil, Options{RetentionMaxAge: retention.DefaultMaxAge, RetentionMaxPerUser: retention.DefaultMaxPerUser}, ""},
		{"both", []string{"-notify-retention-max-age", "24h", "-notify-retention-max-per-user", "7"},
			Options{RetentionMaxAge: 24 * time.Hour, RetentionMaxPerUser: 7}, ""},
		{"bad age", []string{"-notify-retention-max-age", "90d"}, Options{}, EnvRetentionMaxAge},
		{"zero age", []string{"-notify-retention-max-age", "0s"}, Options{}, EnvRetentionMaxAge},
		{"negative age", []string{"-notify-retention-max-age", "-1h"}, Options{}, EnvRetentionMaxAge},
		{"bad count", []string{"-notify-retention-max-per-user", "many"}, Options{}, EnvRetentionMaxPerUser},
		{"zero count", []string{"-notify-retention-max-per-user", "0"}, Options{}, EnvRetentionMaxPerUser},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.New("notifysvc")
			newService := Configure(cfg)
			err := cfg.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q): got %v, want an error naming %s", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.args, err)
			}
			service, err := newService(context.Background(), svc.Deps{
				DB: dbtest.Open(t, sqldb.SQLite), Bus: bus.NewInProcess(), Events: eventlog.NewMemory(eventlog.Options{}),
				Log: slog.New(slog.DiscardHandler), Peers: &peers.Clients{Profile: fakeProfile{}},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer service.Close()
			got := service.(*Service).opts
			if got.RetentionMaxAge != tt.want.RetentionMaxAge || got.RetentionMaxPerUser != tt.want.RetentionMaxPerUser {
				t.Errorf("options: got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestCompressionThreshold: with the shared handler options of every service in front of
// its own (as the processes mount it), a page of a few KiB is sent as it is and only a
// page over 16 KiB is compressed. The shared 1 KiB threshold used to win.
func TestCompressionThreshold(t *testing.T) {
	t.Parallel()
	b := bus.NewInProcess()
	t.Cleanup(func() { b.Close() })
	s, err := New(context.Background(), svc.Deps{
		DB: dbtest.Open(t, sqldb.SQLite), Bus: b, Events: eventlog.NewMemory(eventlog.Options{}),
		Log: slog.New(slog.DiscardHandler), Peers: &peers.Clients{Profile: fakeProfile{}},
		HandlerOptions: svc.HandlerOptions(nil, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(rpc.NewMux(s.RPC()))
	srv.Config.Protocols = rpc.Protocols()
	srv.Start()
	httpClient := rpc.NewHTTPClient()
	rec := rpctest.RecordEncodings(httpClient)
	t.Cleanup(func() {
		httpClient.CloseIdleConnections()
		srv.Close()
		s.Close()
	})
	client := notifyv1connect.NewNotificationServiceClient(httpClient, srv.URL)
	ctx := context.Background()
	for _, tt := range []struct {
		user     int64
		count    int
		message  int // runes per message
		wantGzip bool
	}{
		{user: 1, count: 10, message: 500, wantGzip: false}, // about 5 KiB
		{user: 2, count: 20, message: 1500, wantGzip: true}, // about 30 KiB
	} {
		for range tt.count {
			if _, err := client.CreateNotification(ctx, connect.NewRequest(&notifyv1.CreateNotificationRequest{
				UserId: tt.user, Type: "t", Title: "t", Message: strings.Repeat("a", tt.message),
			})); err != nil {
				t.Fatal(err)
			}
		}
		res, err := client.ListNotifications(ctx, connect.NewRequest(&notifyv1.ListNotificationsRequest{UserId: tt.user, Limit: 50}))
		if err != nil {
			t.Fatal(err)
		}
		size := proto.Size(res.Msg)
		if got := rec.Last() == "gzip"; got != tt.wantGzip {
			t.Errorf("page of %d bytes: compressed %v (Content-Encoding %q), want %v (threshold %d)", size, got, rec.Last(), tt.wantGzip, svc.CompressMinBytes)
		}
	}
}

// TestEventsInTheLog: every notification created through the RPC is appended to its
// owner's history in the user event log, online or not, with consecutive seqs; the edges
// take it from there (presence's StreamUserEvents).
func TestEventsInTheLog(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		events := eventlog.NewMemory(eventlog.Options{})
		client := startServiceWithLog(t, dbtest.OpenURL(t, url), events, Options{})
		ctx := context.Background()
		created := map[int64][]*notifyv1.Notification{}
		for i, user := range []int64{1, 3, 1} {
			res, err := client.CreateNotification(ctx, connect.NewRequest(&notifyv1.CreateNotificationRequest{
				UserId: user, Type: "contact_added", Title: fmt.Sprintf("n%d", i)}))
			if err != nil {
				t.Fatalf("CreateNotification for user %d: %v", user, err)
			}
			created[user] = append(created[user], res.Msg.GetNotification())
		}
		for user, want := range created {
			h, err := events.Read(ctx, user, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !h.Complete || h.LastSeq != uint64(len(want)) || len(h.Records) != len(want) {
				t.Fatalf("history of user %d: complete %v, last seq %d, %d records; want %d", user, h.Complete, h.LastSeq, len(h.Records), len(want))
			}
			for i, r := range h.Records {
				ev := new(notifyv1.StreamEventsResponse)
				if err := proto.Unmarshal(r.Data, ev); err != nil {
					t.Fatal(err)
				}
				if r.Seq != uint64(i+1) || r.UserID != user || r.Service != EventService || r.Exclude != "" {
					t.Fatalf("record %d of user %d: got %+v, want seq %d from %s", i, user, r, i+1, EventService)
				}
				if diff := cmp.Diff(want[i], ev.GetNewNotification(), protocmp.Transform()); diff != "" {
					t.Fatalf("record %d of user %d: NEW_NOTIFICATION (-want +got):\n%s", i, user, diff)
				}
			}
		}
	})
}

// TestStreamEventsMarker: StreamEvents, which edges keep open for unsequenced events,
// starts with fanout's empty subscribed marker.
func TestStreamEventsMarker(t *testing.T) {
	t.Parallel()
	client := startService(t, dbtest.Open(t, sqldb.SQLite), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := client.StreamEvents(ctx, connect.NewRequest(&notifyv1.StreamEventsRequest{EdgeId: testEdge}))
	if err != nil {
		t.Fatalf("StreamEvents: %v", err)
	}
	defer stream.Close()
	if !stream.Receive() {
		t.Fatalf("stream ended: %v", stream.Err())
	}
	if m := stream.Msg(); m.GetEvent() != nil || len(m.GetUserIds()) != 0 {
		t.Fatalf("first message: got %v, want the empty marker", m)
	}
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
	events := eventlog.NewMemory(eventlog.Options{})
	profile := &peers.Clients{Profile: fakeProfile{}}
	for _, tt := range []struct {
		deps svc.Deps
		want string // what the error names
	}{
		{svc.Deps{Bus: b, Events: events, Log: log, Peers: profile}, "DB"},
		{svc.Deps{DB: db, Bus: b, Events: events, Log: log}, "profile"},
		{svc.Deps{DB: db, Bus: b, Log: log, Peers: profile}, "event log"},
	} {
		s, err := NewWithOptions(context.Background(), tt.deps, Options{})
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewWithOptions(%+v): got %v, want an error naming %s", tt.deps, err, tt.want)
		}
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	t.Parallel()
	s, err := NewWithOptions(context.Background(), svc.Deps{
		DB: dbtest.Open(t, sqldb.SQLite), Bus: bus.NewInProcess(), Events: eventlog.NewMemory(eventlog.Options{}),
		Log: slog.New(slog.DiscardHandler), Peers: &peers.Clients{Profile: fakeProfile{}},
	}, Options{PruneInterval: time.Millisecond})
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
