package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/chatsvc/internal/store"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// fakeProfiles knows users 1..n, named "user<id>".
type fakeProfiles struct {
	n     int64
	calls atomic.Int64
	down  atomic.Bool
}

func (f *fakeProfiles) GetUsers(_ context.Context, req *connect.Request[profilev1.GetUsersRequest]) (*connect.Response[profilev1.GetUsersResponse], error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("dial tcp: connection refused"))
	}
	res := &profilev1.GetUsersResponse{}
	for _, id := range req.Msg.GetUserIds() {
		if id >= 1 && id <= f.n {
			res.Users = append(res.Users, &profilev1.User{
				Id: id, UserName: fmt.Sprintf("user%d", id),
				FirstName: fmt.Sprintf("First%d", id), LastName: fmt.Sprintf("Last%d", id),
				Picture: fmt.Sprintf("https://pic.example/%d.png", id),
			})
		}
	}
	return connect.NewResponse(res), nil
}

// online is the set of users with a connection; it serves presence and routes alike.
type online struct {
	down        atomic.Bool // GetPresence fails
	mu          sync.Mutex
	users       map[int64]bool
	presCalls   atomic.Int64
	routesCalls atomic.Int64
}

func (o *online) set(user int64, on bool) {
	o.mu.Lock()
	o.users[user] = on
	o.mu.Unlock()
}

func (o *online) is(user int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.users[user]
}

func (o *online) GetPresence(_ context.Context, req *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error) {
	o.presCalls.Add(1)
	if o.down.Load() {
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("presence down"))
	}
	res := &presencev1.GetPresenceResponse{}
	for _, id := range req.Msg.GetUserIds() {
		res.Presences = append(res.Presences, &presencev1.Presence{UserId: id, IsOnline: o.is(id)})
	}
	return connect.NewResponse(res), nil
}

// Routes puts every online user on edge "e1".
func (o *online) Routes(_ context.Context, ids []int64) (map[int64][]string, error) {
	o.routesCalls.Add(1)
	out := map[int64][]string{}
	for _, id := range ids {
		if o.is(id) {
			out[id] = []string{"e1"}
		}
	}
	return out, nil
}

type fakeNotifier struct {
	mu   sync.Mutex
	sent []*notifyv1.CreateNotificationRequest
}

func (f *fakeNotifier) CreateNotification(_ context.Context, req *connect.Request[notifyv1.CreateNotificationRequest]) (*connect.Response[notifyv1.CreateNotificationResponse], error) {
	f.mu.Lock()
	f.sent = append(f.sent, req.Msg)
	f.mu.Unlock()
	return connect.NewResponse(&notifyv1.CreateNotificationResponse{Notification: &notifyv1.Notification{UserId: req.Msg.GetUserId()}}), nil
}

// take returns and forgets the notifications raised so far.
func (f *fakeNotifier) take() []*notifyv1.CreateNotificationRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.sent
	f.sent = nil
	return out
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a chat server on a real database, served over HTTP and called through the
// generated client, with fake peers and the events of edge "e1" collected.
type env struct {
	client   chatv1connect.ChatServiceClient
	srv      *Server
	store    *store.Store
	db       *sqldb.DB
	queries  *dbtest.Counter // statements run on db
	profiles *fakeProfiles
	online   *online
	notifier *fakeNotifier
	clock    *clock
	events   chan *chatv1.StreamEventsResponse
}

type envOption func(*Config)

func newEnv(tb testing.TB, url string, users int64, opts ...envOption) *env {
	tb.Helper()
	ctx := context.Background()
	db, queries := dbtest.OpenCounting(tb, url)
	st := store.New(db)
	if err := st.Migrate(ctx); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	e := &env{
		store:    st,
		db:       db,
		queries:  queries,
		profiles: &fakeProfiles{n: users},
		online:   &online{users: map[int64]bool{}},
		notifier: &fakeNotifier{},
		clock:    &clock{t: time.UnixMilli(1_700_000_000_000)},
		events:   make(chan *chatv1.StreamEventsResponse, 100_000),
	}
	b := bus.NewInProcess()
	sub, err := b.Subscribe(fanout.Subject("chat", "e1"), func(data []byte) {
		ev := new(chatv1.StreamEventsResponse)
		if err := proto.Unmarshal(data, ev); err != nil {
			panic(err)
		}
		select {
		case e.events <- ev:
		default: // a benchmark that does not read them
		}
	})
	if err != nil {
		tb.Fatalf("subscribe: %v", err)
	}
	tb.Cleanup(func() { _ = sub.Unsubscribe() })
	cfg := Config{
		Store:     st,
		Profiles:  e.profiles,
		Presence:  e.online,
		Notifier:  e.notifier,
		Publisher: fanout.NewPublisher(b, e.online, "chat"),
		Now:       e.clock.now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.srv = New(cfg)
	tb.Cleanup(func() { e.srv.Close() })
	path, h := chatv1connect.NewChatServiceHandler(e.srv, HandlerOptions()...)
	hs := httptest.NewUnstartedServer(rpc.NewMux(rpc.Service{Name: chatv1connect.ChatServiceName, Path: path, Handler: h}))
	hs.Config.Protocols = rpc.Protocols() // cleartext HTTP/2, as internal calls are made
	hs.Start()
	tb.Cleanup(hs.Close)
	e.client = chatv1connect.NewChatServiceClient(rpc.NewHTTPClient(), hs.URL)
	return e
}

// drain returns the events published so far (the in-process bus delivers synchronously,
// before the RPC that raised them returns).
func (e *env) drain() []*chatv1.StreamEventsResponse {
	var out []*chatv1.StreamEventsResponse
	for {
		select {
		case ev := <-e.events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func (e *env) contact(tb testing.TB, a, b int64) int64 {
	tb.Helper()
	res, err := e.client.CreateContact(context.Background(), connect.NewRequest(&chatv1.CreateContactRequest{UserId: a, OtherUserId: b}))
	if err != nil {
		tb.Fatalf("CreateContact(%d, %d): %v", a, b, err)
	}
	return res.Msg.GetChatId()
}

func (e *env) send(tb testing.TB, req *chatv1.SendMessageRequest) *chatv1.SendMessageResponse {
	tb.Helper()
	res, err := e.client.SendMessage(context.Background(), connect.NewRequest(req))
	if err != nil {
		tb.Fatalf("SendMessage(%v): %v", req, err)
	}
	return res.Msg
}

func wantCode(tb testing.TB, what string, err error, want connect.Code) {
	tb.Helper()
	if got := connect.CodeOf(err); err == nil || got != want {
		tb.Fatalf("%s: got %v (%v), want %v", what, got, err, want)
	}
}

func formatID(id int64) string { return fmt.Sprint(id) }
