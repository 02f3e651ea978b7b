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
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
	"github.com/charla/charla/shared/svc"
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

// online is the set of users with a connection, as the presence service knows it. Like
// the presence service, set announces each change on fanout.PresenceChangedSubject, so
// the chat server's OnlineCache forgets what it knew of that user.
type online struct {
	bus       bus.Bus
	down      atomic.Bool // GetPresence fails
	mu        sync.Mutex
	users     map[int64]bool
	presCalls atomic.Int64
}

func (o *online) set(user int64, on bool) {
	o.mu.Lock()
	o.users[user] = on
	o.mu.Unlock()
	if err := o.bus.Publish(context.Background(), fanout.PresenceChangedSubject, fanout.EncodeUsers([]int64{user})); err != nil {
		panic(err) // the in-process bus does not fail
	}
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

// eventLog is the user event log of the tests, in memory. It also hands the records of
// every append to seen, as Append returns them (with their seqs), so that tests see each
// published event once with the users whose history got it.
type eventLog struct {
	*eventlog.Memory
	seen func([]eventlog.Record)

	mu        sync.Mutex
	positions map[uint64]bool // records already reported: a keyed repeat returns them again
}

// Append reports the records the append added (not those a keyed repeat returned).
func (l *eventLog) Append(ctx context.Context, ev eventlog.Event, users []int64) ([]eventlog.Record, error) {
	recs, err := l.Memory.Append(ctx, ev, users)
	if err != nil {
		return recs, err
	}
	l.mu.Lock()
	if l.positions == nil {
		l.positions = map[uint64]bool{}
	}
	var added []eventlog.Record
	for _, r := range recs {
		if !l.positions[r.Position] {
			l.positions[r.Position] = true
			added = append(added, r)
		}
	}
	l.mu.Unlock()
	if len(added) > 0 {
		l.seen(added)
	}
	return recs, err
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
// generated client, with fake peers, an in-memory user event log and the events published
// collected.
type env struct {
	client   chatv1connect.ChatServiceClient
	url      string // the chat handler's base URL, for clients of a test's own
	srv      *Server
	store    *store.Store
	db       *sqldb.DB
	queries  *dbtest.Counter // statements run on db
	profiles *fakeProfiles
	online   *online
	notifier *fakeNotifier
	clock    *clock
	log      *eventlog.Memory
	// events are the events published, in order: a sequenced one as the records of its
	// append (user_ids: the users whose history got it), TYPING_INDICATOR as broadcast on
	// the bus to every edge.
	events chan *chatv1.StreamEventsResponse
}

type envOption func(*Config)

// sequenced tells the chat events that get a seq, as chatsvc.New does: all but
// TYPING_INDICATOR (docs/protocol.md §8.2).
func sequenced(ev proto.Message) bool {
	e, ok := ev.(*chatv1.StreamEventsResponse)
	return !ok || e.GetTypingIndicator() == nil
}

func newEnv(tb testing.TB, url string, users int64, opts ...envOption) *env {
	tb.Helper()
	ctx := context.Background()
	db, queries := dbtest.OpenCounting(tb, url)
	st := store.New(db)
	if err := st.Migrate(ctx); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	b := bus.NewInProcess()
	e := &env{
		store:    st,
		db:       db,
		queries:  queries,
		profiles: &fakeProfiles{n: users},
		online:   &online{bus: b, users: map[int64]bool{}},
		notifier: &fakeNotifier{},
		clock:    &clock{t: time.UnixMilli(1_700_000_000_000)},
		log:      eventlog.NewMemory(eventlog.Options{}),
		events:   make(chan *chatv1.StreamEventsResponse, 100_000),
	}
	collect := func(ev *chatv1.StreamEventsResponse) {
		select {
		case e.events <- ev:
		default: // a benchmark that does not read them
		}
	}
	sub, err := b.Subscribe(fanout.BroadcastSubject("chat"), func(data []byte) {
		ev := new(chatv1.StreamEventsResponse)
		if err := proto.Unmarshal(data, ev); err != nil {
			panic(err)
		}
		collect(ev)
	})
	if err != nil {
		tb.Fatalf("subscribe: %v", err)
	}
	tb.Cleanup(func() { _ = sub.Unsubscribe() })
	log := &eventLog{Memory: e.log, seen: func(recs []eventlog.Record) {
		ev := new(chatv1.StreamEventsResponse)
		if err := proto.Unmarshal(recs[0].Data, ev); err != nil {
			panic(err)
		}
		for _, r := range recs {
			ev.UserIds = append(ev.UserIds, r.UserID)
		}
		collect(ev)
	}}
	cache, err := fanout.NewOnlineCache(b, e.online)
	if err != nil {
		tb.Fatalf("online cache: %v", err)
	}
	tb.Cleanup(func() { _ = cache.Close() })
	cfg := Config{
		Store:     st,
		Profiles:  e.profiles,
		Presence:  e.online,
		Notifier:  e.notifier,
		Publisher: fanout.NewPublisher(b, log, "chat", fanout.WithOnline(cache), fanout.WithSequenced(sequenced)),
		Now:       e.clock.now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.srv = New(cfg)
	tb.Cleanup(func() { e.srv.Close() })
	path, h := chatv1connect.NewChatServiceHandler(e.srv, svc.HandlerOptions(nil, "")...) // as chatsvc mounts it
	hs := httptest.NewUnstartedServer(rpc.NewMux(rpc.Service{Name: chatv1connect.ChatServiceName, Path: path, Handler: h}))
	hs.Config.Protocols = rpc.Protocols() // cleartext HTTP/2, as internal calls are made
	hs.Start()
	tb.Cleanup(hs.Close)
	e.url = hs.URL
	e.client = chatv1connect.NewChatServiceClient(rpc.NewHTTPClient(), hs.URL)
	return e
}

// history returns the events in user's history, in seq order, checking that the seqs
// run from 1 without a gap.
func (e *env) history(tb testing.TB, user int64) []*chatv1.StreamEventsResponse {
	tb.Helper()
	h, err := e.log.Read(context.Background(), user, 0)
	if err != nil {
		tb.Fatalf("read the history of user %d: %v", user, err)
	}
	out := make([]*chatv1.StreamEventsResponse, len(h.Records))
	for i, r := range h.Records {
		if r.Seq != uint64(i+1) || r.UserID != user || r.Service != "chat" {
			tb.Fatalf("user %d record %d: got seq %d user %d service %q, want seq %d of user %d from chat", user, i, r.Seq, r.UserID, r.Service, i+1, user)
		}
		out[i] = new(chatv1.StreamEventsResponse)
		if err := proto.Unmarshal(r.Data, out[i]); err != nil {
			tb.Fatalf("user %d record %d: %v", user, r.Seq, err)
		}
		if out[i].GetExcludeConnectionId() != r.Exclude {
			tb.Fatalf("user %d record %d: exclude %q, event says %q", user, r.Seq, r.Exclude, out[i].GetExcludeConnectionId())
		}
	}
	if !h.Complete || h.LastSeq != uint64(len(out)) {
		tb.Fatalf("history of user %d: complete %v, last seq %d, %d records; want complete", user, h.Complete, h.LastSeq, len(out))
	}
	return out
}

// drain returns the events published so far (the log's appends and the in-process bus's
// deliveries are done before the RPC that raised them returns).
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
