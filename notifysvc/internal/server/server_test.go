package server

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/google/go-cmp/cmp"

	"github.com/charla/charla/notifysvc/internal/notify"
	"github.com/charla/charla/notifysvc/internal/store"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// fakeUsers knows the users in known; err, when set, is the answer for everyone.
type fakeUsers struct {
	known map[int64]bool
	err   error
}

func (f fakeUsers) Exists(_ context.Context, id int64) (bool, error) {
	if f.err != nil {
		return false, f.err
	}
	return f.known[id], nil
}

// Users of the tests: 1, 2 and 3 are known, 99 is unknown.
var users = fakeUsers{known: map[int64]bool{1: true, 2: true, 3: true}}

// env is a handler served over HTTP on a fresh database, with the user event log it
// appends its events to.
type env struct {
	client notifyv1connect.NotificationServiceClient
	now    time.Time
	log    *eventlog.Memory
	pub    *fanout.Publisher
	closed bool // the test closed pub itself
}

// pushed returns the events in user's history, checking each record against its user.
func (e *env) pushed(t *testing.T, user int64) []*notifyv1.StreamEventsResponse {
	t.Helper()
	h, err := e.log.Read(context.Background(), user, 0)
	if err != nil {
		t.Fatalf("read the history of user %d: %v", user, err)
	}
	if !h.Complete || h.LastSeq != uint64(len(h.Records)) {
		t.Fatalf("history of user %d: complete %v, last seq %d, %d records; want complete", user, h.Complete, h.LastSeq, len(h.Records))
	}
	out := make([]*notifyv1.StreamEventsResponse, len(h.Records))
	for i, r := range h.Records {
		if r.UserID != user || r.Seq != uint64(i+1) || r.Service != "notify" {
			t.Fatalf("history of user %d, record %d: got %+v, want seq %d from notify", user, i, r, i+1)
		}
		out[i] = new(notifyv1.StreamEventsResponse)
		if err := proto.Unmarshal(r.Data, out[i]); err != nil {
			t.Fatalf("undecodable event: %v", err)
		}
	}
	return out
}

type envOptions struct {
	users Users
	// logFailures is how many appends the event log refuses before it works.
	logFailures int64
	// publishTimeout is Config.PublishTimeout.
	publishTimeout time.Duration
}

// flakyLog refuses its first failures appends, as a JetStream log does while NATS
// reconnects.
type flakyLog struct {
	*eventlog.Memory
	failures atomic.Int64
}

func (f *flakyLog) Append(ctx context.Context, ev eventlog.Event, users []int64) ([]eventlog.Record, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, errors.New("nats: no responders available for request")
	}
	return f.Memory.Append(ctx, ev, users)
}

func newEnv(t *testing.T, url string, o envOptions) *env {
	t.Helper()
	if o.users == nil {
		o.users = users
	}
	sdb := dbtest.OpenURL(t, url)
	if err := store.Migrate(context.Background(), sdb); err != nil {
		t.Fatal(err)
	}
	st := store.New(sdb)
	e := &env{now: time.UnixMilli(1_700_000_000_123), log: eventlog.NewMemory(eventlog.Options{})}
	b := bus.NewInProcess()
	t.Cleanup(func() { b.Close() })
	log := &flakyLog{Memory: e.log}
	log.failures.Store(o.logFailures)
	e.pub = fanout.NewPublisher(b, log, "notify")
	t.Cleanup(func() {
		if !e.closed {
			_ = e.pub.Close()
		}
	})
	h := New(Config{
		Store:          st,
		Users:          o.users,
		Publisher:      e.pub,
		Now:            func() time.Time { return e.now },
		PublishTimeout: o.publishTimeout,
	})
	path, handler := notifyv1connect.NewNotificationServiceHandler(h)
	srv := httptest.NewUnstartedServer(rpc.NewMux(rpc.Service{Name: notifyv1connect.NotificationServiceName, Path: path, Handler: handler}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e.client = notifyv1connect.NewNotificationServiceClient(srv.Client(), srv.URL)
	return e
}

func (e *env) create(t *testing.T, req *notifyv1.CreateNotificationRequest) *notifyv1.Notification {
	t.Helper()
	res, err := e.client.CreateNotification(context.Background(), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("CreateNotification(%v): %v", req, err)
	}
	return res.Msg.GetNotification()
}

func (e *env) list(t *testing.T, req *notifyv1.ListNotificationsRequest) *notifyv1.ListNotificationsResponse {
	t.Helper()
	res, err := e.client.ListNotifications(context.Background(), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("ListNotifications(%v): %v", req, err)
	}
	return res.Msg
}

func (e *env) mark(t *testing.T, req *notifyv1.MarkReadRequest) int64 {
	t.Helper()
	res, err := e.client.MarkRead(context.Background(), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("MarkRead(%v): %v", req, err)
	}
	return res.Msg.GetUpdated()
}

// wantCode checks err's Connect code and that its message names field (when not empty).
func wantCode(t *testing.T, err error, code connect.Code, field string) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != code {
		t.Fatalf("error: got %v (%v), want %v", got, err, code)
	}
	if field != "" && !strings.Contains(err.Error(), field) {
		t.Fatalf("error message: got %q, want it to name %q", err.Error(), field)
	}
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ids(ns []*notifyv1.Notification) []int64 {
	out := make([]int64, len(ns))
	for i, n := range ns {
		out[i] = n.GetId()
	}
	return out
}

func TestCreateNotification(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, envOptions{})
		ctx := context.Background()

		t.Run("invalid input", func(t *testing.T) {
			big := func(n int) *structpb.Struct { // compact JSON of exactly n bytes
				return mustStruct(t, map[string]any{"k": strings.Repeat("x", n-8)})
			}
			valid := &notifyv1.CreateNotificationRequest{UserId: 1, Type: "contact_added", Title: "t"}
			tests := []struct {
				name  string
				edit  func(r *notifyv1.CreateNotificationRequest)
				field string
			}{
				{"user 0", func(r *notifyv1.CreateNotificationRequest) { r.UserId = 0 }, "user_id"},
				{"negative user", func(r *notifyv1.CreateNotificationRequest) { r.UserId = -1 }, "user_id"},
				{"no type", func(r *notifyv1.CreateNotificationRequest) { r.Type = "" }, "type"},
				{"bad type", func(r *notifyv1.CreateNotificationRequest) { r.Type = "New Message" }, "type"},
				{"long type", func(r *notifyv1.CreateNotificationRequest) { r.Type = strings.Repeat("a", 65) }, "type"},
				{"no title", func(r *notifyv1.CreateNotificationRequest) { r.Title = "" }, "title"},
				{"long title", func(r *notifyv1.CreateNotificationRequest) { r.Title = strings.Repeat("ñ", 201) }, "title"},
				{"long message", func(r *notifyv1.CreateNotificationRequest) { r.Message = strings.Repeat("😀", 2001) }, "message"},
				{"payload of 4097 bytes", func(r *notifyv1.CreateNotificationRequest) { r.Payload = big(4097) }, "payload"},
				{"input before existence", func(r *notifyv1.CreateNotificationRequest) { r.UserId = 99; r.Title = "" }, "title"},
				{"type before payload", func(r *notifyv1.CreateNotificationRequest) { r.Type = ""; r.Payload = big(5000) }, "type"},
			}
			for _, tt := range tests {
				req := proto.Clone(valid).(*notifyv1.CreateNotificationRequest)
				tt.edit(req)
				_, err := e.client.CreateNotification(ctx, connect.NewRequest(req))
				t.Run(tt.name, func(t *testing.T) { wantCode(t, err, connect.CodeInvalidArgument, tt.field) })
			}
			// The limits themselves are allowed.
			e.create(t, &notifyv1.CreateNotificationRequest{UserId: 3, Type: strings.Repeat("z", 64),
				Title: strings.Repeat("😀", 200), Message: strings.Repeat("ñ", 2000), Payload: big(4096)})
		})

		t.Run("unknown user", func(t *testing.T) {
			_, err := e.client.CreateNotification(ctx, connect.NewRequest(&notifyv1.CreateNotificationRequest{UserId: 99, Type: "x", Title: "x"}))
			wantCode(t, err, connect.CodeNotFound, "")
		})

		t.Run("stored and pushed live", func(t *testing.T) {
			payload := mustStruct(t, map[string]any{"userId": 2.0, "userName": "bob", "nested": map[string]any{"a": []any{true, nil, "x"}}})
			got := e.create(t, &notifyv1.CreateNotificationRequest{UserId: 1, Type: "contact_added", Title: "Nuevo contacto", Message: "bob 😀", Payload: payload})
			want := &notifyv1.Notification{Id: got.GetId(), UserId: 1, Type: "contact_added", Title: "Nuevo contacto",
				Message: "bob 😀", CreatedAt: e.now.UnixMilli(), Payload: payload}
			if got.GetId() <= 0 {
				t.Fatalf("id: got %d, want > 0", got.GetId())
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Fatalf("response (-want +got):\n%s", diff)
			}
			listed := e.list(t, &notifyv1.ListNotificationsRequest{UserId: 1})
			if diff := cmp.Diff([]*notifyv1.Notification{want}, listed.GetNotifications(), protocmp.Transform()); diff != "" {
				t.Fatalf("listed (-want +got):\n%s", diff)
			}
			var pushed *notifyv1.StreamEventsResponse
			for _, ev := range e.pushed(t, 1) {
				if ev.GetNewNotification().GetId() == got.GetId() {
					pushed = ev
				}
			}
			if pushed == nil {
				t.Fatalf("no NEW_NOTIFICATION in user 1's history for notification %d", got.GetId())
			}
			if diff := cmp.Diff(want, pushed.GetNewNotification(), protocmp.Transform()); diff != "" {
				t.Fatalf("pushed (-want +got):\n%s", diff)
			}
			if got := pushed.GetUserIds(); len(got) != 0 {
				t.Fatalf("pushed user_ids: got %v, want none (the record names its user)", got)
			}
			if evs := e.pushed(t, 2); len(evs) != 0 {
				t.Fatalf("user 2's history got %v, want nothing", evs)
			}
		})

		t.Run("every owner's history gets it, online or not", func(t *testing.T) {
			got := e.create(t, &notifyv1.CreateNotificationRequest{UserId: 3, Type: "new_message", Title: "x",
				Payload: mustStruct(t, map[string]any{"chatId": "5", "fromUserId": 1.0})})
			evs := e.pushed(t, 3)
			if n := evs[len(evs)-1].GetNewNotification(); n.GetId() != got.GetId() || n.GetUserId() != 3 {
				t.Fatalf("user 3's newest event: got %v, want notification %d", evs[len(evs)-1], got.GetId())
			}
			listed := e.list(t, &notifyv1.ListNotificationsRequest{UserId: 3, Limit: 1})
			if got, want := ids(listed.GetNotifications()), []int64{got.GetId()}; !slices.Equal(got, want) {
				t.Fatalf("listed: got %v, want %v", got, want)
			}
			if got := listed.GetNotifications()[0].GetPayload().GetFields()["chatId"].GetStringValue(); got != "5" {
				t.Fatalf("payload chatId: got %q, want %q", got, "5")
			}
		})
	})
}

func TestCreateWhenPeersFail(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t, "sqlite")
	t.Run("profile unavailable", func(t *testing.T) {
		e := newEnv(t, url, envOptions{users: fakeUsers{err: notify.ErrUnavailable}})
		_, err := e.client.CreateNotification(context.Background(), connect.NewRequest(&notifyv1.CreateNotificationRequest{UserId: 1, Type: "x", Title: "x"}))
		wantCode(t, err, connect.CodeUnavailable, "")
	})
	t.Run("event log down: stored, and the call does not wait for the log", func(t *testing.T) {
		e := newEnv(t, dbtest.NewURL(t, "sqlite"), envOptions{logFailures: 1 << 40, publishTimeout: 50 * time.Millisecond})
		// The bound only keeps a regression from hanging the test; the call returns as soon
		// as the publish gives up (PublishTimeout).
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := e.client.CreateNotification(ctx, connect.NewRequest(&notifyv1.CreateNotificationRequest{UserId: 1, Type: "x", Title: "x"}))
		if err != nil {
			t.Fatalf("CreateNotification with the event log down: %v, want success (the push is best effort)", err)
		}
		if got := ids(e.list(t, &notifyv1.ListNotificationsRequest{UserId: 1}).GetNotifications()); !slices.Equal(got, []int64{res.Msg.GetNotification().GetId()}) {
			t.Fatalf("listed: got %v, want [%d]", got, res.Msg.GetNotification().GetId())
		}
		// The event is kept for the log, not dropped; a log that never comes back before
		// the service closes is reported by Close.
		if n := e.pub.Backlog(); n != 1 {
			t.Fatalf("events kept for the log: got %d, want 1", n)
		}
		e.closed = true
		if err := e.pub.Close(); err == nil || !strings.Contains(err.Error(), "1 events never appended") {
			t.Fatalf("Close with the log still down: got %v, want an error counting 1 event", err)
		}
	})
	t.Run("event log down longer than the call waits: stored, and pushed once the log is back", func(t *testing.T) {
		// 50 ms of PublishTimeout covers the first two or three refused appends; the
		// publisher keeps the event and appends it when the log takes it (the 8th try).
		e := newEnv(t, dbtest.NewURL(t, "sqlite"), envOptions{logFailures: 7, publishTimeout: 50 * time.Millisecond})
		n := e.create(t, &notifyv1.CreateNotificationRequest{UserId: 1, Type: "x", Title: "x"})
		deadline := time.Now().Add(30 * time.Second)
		for e.pub.Backlog() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if evs := e.pushed(t, 1); len(evs) != 1 || evs[0].GetNewNotification().GetId() != n.GetId() {
			t.Fatalf("history of user 1 after the log came back: got %v, want notification %d once", evs, n.GetId())
		}
	})
	t.Run("event log briefly unavailable: stored, and pushed once it is back", func(t *testing.T) {
		e := newEnv(t, dbtest.NewURL(t, "sqlite"), envOptions{logFailures: 2})
		n := e.create(t, &notifyv1.CreateNotificationRequest{UserId: 1, Type: "x", Title: "x"})
		if got := ids(e.list(t, &notifyv1.ListNotificationsRequest{UserId: 1}).GetNotifications()); !slices.Equal(got, []int64{n.GetId()}) {
			t.Fatalf("listed: got %v, want [%d]", got, n.GetId())
		}
		if evs := e.pushed(t, 1); len(evs) != 1 || evs[0].GetNewNotification().GetId() != n.GetId() {
			t.Fatalf("history of user 1: got %v, want notification %d once", evs, n.GetId())
		}
	})
}

func TestListNotifications(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, envOptions{})
		ctx := context.Background()
		var all []int64 // user 1's, oldest first, all at the same millisecond
		for range 60 {
			all = append(all, e.create(t, &notifyv1.CreateNotificationRequest{UserId: 1, Type: "t", Title: "t"}).GetId())
			e.create(t, &notifyv1.CreateNotificationRequest{UserId: 2, Type: "t", Title: "t"})
		}
		newestFirst := slices.Clone(all)
		slices.Reverse(newestFirst)
		// Read every third one.
		for i := 0; i < len(all); i += 3 {
			e.mark(t, &notifyv1.MarkReadRequest{UserId: 1, NotificationId: all[i]})
		}
		const unread = 40

		t.Run("invalid", func(t *testing.T) {
			for _, tt := range []struct {
				req   *notifyv1.ListNotificationsRequest
				field string
			}{
				{&notifyv1.ListNotificationsRequest{UserId: 0}, "user_id"},
				{&notifyv1.ListNotificationsRequest{UserId: 1, Limit: 201}, "limit"},
				{&notifyv1.ListNotificationsRequest{UserId: 1, Limit: -1}, "limit"},
				{&notifyv1.ListNotificationsRequest{UserId: 1, BeforeId: -5}, "before_id"},
			} {
				_, err := e.client.ListNotifications(ctx, connect.NewRequest(tt.req))
				wantCode(t, err, connect.CodeInvalidArgument, tt.field)
			}
			_, err := e.client.ListNotifications(ctx, connect.NewRequest(&notifyv1.ListNotificationsRequest{UserId: 99}))
			wantCode(t, err, connect.CodeNotFound, "")
		})

		t.Run("default limit and unread count", func(t *testing.T) {
			res := e.list(t, &notifyv1.ListNotificationsRequest{UserId: 1})
			if got, want := ids(res.GetNotifications()), newestFirst[:notify.DefaultLimit]; !slices.Equal(got, want) {
				t.Fatalf("page: got %v, want %v", got, want)
			}
			if got := res.GetUnreadCount(); got != unread {
				t.Fatalf("unread count: got %d, want %d", got, unread)
			}
		})

		t.Run("pages over equal timestamps", func(t *testing.T) {
			for _, unreadOnly := range []bool{false, true} {
				var want []int64
				for _, id := range newestFirst {
					if !unreadOnly || slices.Index(all, id)%3 != 0 {
						want = append(want, id)
					}
				}
				var got []int64
				var before int64
				for {
					res := e.list(t, &notifyv1.ListNotificationsRequest{UserId: 1, Limit: 7, BeforeId: before, UnreadOnly: unreadOnly})
					if res.GetUnreadCount() != unread {
						t.Fatalf("unread count on a page: got %d, want %d", res.GetUnreadCount(), unread)
					}
					page := ids(res.GetNotifications())
					got = append(got, page...)
					if len(page) < 7 {
						break
					}
					before = page[len(page)-1]
				}
				if !slices.Equal(got, want) {
					t.Fatalf("unreadOnly=%v: got %v, want %v", unreadOnly, got, want)
				}
			}
		})

		t.Run("empty page is an empty list", func(t *testing.T) {
			res := e.list(t, &notifyv1.ListNotificationsRequest{UserId: 3})
			if len(res.GetNotifications()) != 0 || res.GetUnreadCount() != 0 {
				t.Fatalf("got %v, want nothing", res)
			}
			res = e.list(t, &notifyv1.ListNotificationsRequest{UserId: 1, BeforeId: all[0]})
			if len(res.GetNotifications()) != 0 || res.GetUnreadCount() != unread {
				t.Fatalf("before the first: got %v, want no items and unread %d", res, unread)
			}
		})
	})
}

func TestMarkRead(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, envOptions{})
		ctx := context.Background()
		mine := []int64{}
		for range 3 {
			mine = append(mine, e.create(t, &notifyv1.CreateNotificationRequest{UserId: 1, Type: "t", Title: "t"}).GetId())
		}
		theirs := e.create(t, &notifyv1.CreateNotificationRequest{UserId: 2, Type: "t", Title: "t"}).GetId()
		unread := func(user int64) int64 {
			t.Helper()
			return e.list(t, &notifyv1.ListNotificationsRequest{UserId: user}).GetUnreadCount()
		}

		for _, tt := range []struct {
			name  string
			req   *notifyv1.MarkReadRequest
			code  connect.Code
			field string
		}{
			{"neither", &notifyv1.MarkReadRequest{UserId: 1}, connect.CodeInvalidArgument, "notification_id"},
			{"both", &notifyv1.MarkReadRequest{UserId: 1, NotificationId: mine[0], All: true}, connect.CodeInvalidArgument, "notification_id"},
			{"negative id", &notifyv1.MarkReadRequest{UserId: 1, NotificationId: -1}, connect.CodeInvalidArgument, "notification_id"},
			{"no user", &notifyv1.MarkReadRequest{NotificationId: mine[0]}, connect.CodeInvalidArgument, "user_id"},
			{"unknown user", &notifyv1.MarkReadRequest{UserId: 99, All: true}, connect.CodeNotFound, ""},
			{"another user's", &notifyv1.MarkReadRequest{UserId: 1, NotificationId: theirs}, connect.CodeNotFound, ""},
			{"unknown id", &notifyv1.MarkReadRequest{UserId: 1, NotificationId: theirs + 1000}, connect.CodeNotFound, ""},
		} {
			_, err := e.client.MarkRead(ctx, connect.NewRequest(tt.req))
			t.Run(tt.name, func(t *testing.T) { wantCode(t, err, tt.code, tt.field) })
		}
		if got := unread(2); got != 1 {
			t.Fatalf("other user's unread after a refused mark: got %d, want 1", got)
		}
		if got := unread(1); got != 3 {
			t.Fatalf("unread after refused marks: got %d, want 3", got)
		}

		if got := e.mark(t, &notifyv1.MarkReadRequest{UserId: 1, NotificationId: mine[1]}); got != 1 {
			t.Fatalf("mark one: got %d, want 1", got)
		}
		if got := e.mark(t, &notifyv1.MarkReadRequest{UserId: 1, NotificationId: mine[1]}); got != 0 {
			t.Fatalf("mark one again: got %d, want 0", got)
		}
		if got := unread(1); got != 2 {
			t.Fatalf("unread: got %d, want 2", got)
		}
		if got := e.mark(t, &notifyv1.MarkReadRequest{UserId: 1, All: true}); got != 2 {
			t.Fatalf("mark all: got %d, want 2", got)
		}
		if got := e.mark(t, &notifyv1.MarkReadRequest{UserId: 1, All: true}); got != 0 {
			t.Fatalf("mark all again: got %d, want 0", got)
		}
		if got := unread(2); got != 1 {
			t.Fatalf("other user's unread after mark all: got %d, want 1", got)
		}
		for _, n := range e.list(t, &notifyv1.ListNotificationsRequest{UserId: 1}).GetNotifications() {
			if !n.GetIsRead() {
				t.Fatalf("notification %d: got unread, want read", n.GetId())
			}
		}
	})
}
