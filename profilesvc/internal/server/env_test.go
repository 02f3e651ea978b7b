package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/profilesvc/internal/server"
	"github.com/charla/charla/profilesvc/internal/store"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// fakeContacts answers ListContactIds from a map, or fails with err.
type fakeContacts struct {
	mu    sync.Mutex
	ids   map[int64][]int64
	err   error
	calls int
}

func (f *fakeContacts) ListContactIds(_ context.Context, req *connect.Request[chatv1.ListContactIdsRequest]) (*connect.Response[chatv1.ListContactIdsResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	res := &chatv1.ListContactIdsResponse{}
	for _, u := range req.Msg.GetUserIds() {
		res.Contacts = append(res.Contacts, &chatv1.UserContacts{UserId: u, ContactIds: f.ids[u]})
	}
	return connect.NewResponse(res), nil
}

func (f *fakeContacts) set(user int64, contacts ...int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids[user] = contacts
}

func (f *fakeContacts) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeContacts) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakePresence answers GetPresence from a map, or fails with err.
type fakePresence struct {
	mu    sync.Mutex
	state map[int64]*presencev1.Presence
	err   error
	calls int
}

func (f *fakePresence) GetPresence(_ context.Context, req *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	res := &presencev1.GetPresenceResponse{}
	for _, u := range req.Msg.GetUserIds() {
		p := f.state[u]
		if p == nil {
			p = &presencev1.Presence{UserId: u}
		}
		res.Presences = append(res.Presences, p)
	}
	return connect.NewResponse(res), nil
}

func (f *fakePresence) set(user int64, online bool, lastSeen int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state[user] = &presencev1.Presence{UserId: user, IsOnline: online, LastSeen: lastSeen}
}

func (f *fakePresence) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakePresence) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// published is one event sent through fakeEvents.
type published struct {
	event *profilev1.StreamEventsResponse
	users []int64
}

// fakeEvents records published events, or fails with err.
type fakeEvents struct {
	mu   sync.Mutex
	sent []published
	err  error
}

func (f *fakeEvents) Publish(_ context.Context, ev proto.Message, users ...int64) ([]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, published{event: proto.Clone(ev).(*profilev1.StreamEventsResponse), users: users})
	return nil, f.err
}

func (f *fakeEvents) all() []published {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]published(nil), f.sent...)
}

// env is a profile server on a real database, served over HTTP and called through the
// generated client, with fake peers.
type env struct {
	client   profilev1connect.ProfileServiceClient
	db       *sqldb.DB
	queries  *dbtest.Counter
	contacts *fakeContacts
	presence *fakePresence
	events   *fakeEvents
	clock    atomic.Int64 // milliseconds added to the real clock
	logs     *syncBuffer  // everything the server logged, at every level
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newEnv(tb testing.TB, backend sqldb.Dialect) *env {
	tb.Helper()
	db, counter := dbtest.OpenCounting(tb, dbtest.NewURL(tb, backend))
	if err := store.Migrate(context.Background(), db); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	counter.Reset()
	e := &env{
		db:       db,
		queries:  counter,
		contacts: &fakeContacts{ids: map[int64][]int64{}},
		presence: &fakePresence{state: map[int64]*presencev1.Presence{}},
		events:   &fakeEvents{},
		logs:     &syncBuffer{},
	}
	srv := server.New(server.Config{
		Store:    store.New(db),
		Contacts: e.contacts,
		Presence: e.presence,
		Events:   e.events,
		Log:      slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      func() time.Time { return time.Now().Add(time.Duration(e.clock.Load()) * time.Millisecond) },
	})
	path, h := profilev1connect.NewProfileServiceHandler(srv)
	hs := httptest.NewServer(rpc.NewMux(rpc.Service{Name: profilev1connect.ProfileServiceName, Path: path, Handler: h}))
	tb.Cleanup(hs.Close)
	e.client = profilev1connect.NewProfileServiceClient(hs.Client(), hs.URL)
	return e
}

// advance moves the server's clock forward.
func (e *env) advance(d time.Duration) { e.clock.Add(d.Milliseconds()) }

// forEachBackend runs fn as a parallel subtest on SQLite and (when configured) MySQL.
func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, b := range dbtest.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, b))
		})
	}
}

var userSeq atomic.Int64

// createUser creates a user with a unique name and returns it.
func (e *env) createUser(t testing.TB) *profilev1.User {
	t.Helper()
	n := userSeq.Add(1)
	name := "user" + strings.Repeat("x", int(n%3)) + "_" + strconv.FormatInt(n, 10)
	res, err := e.client.CreateUser(context.Background(), connect.NewRequest(&profilev1.CreateUserRequest{
		UserName: name, FirstName: "First", LastName: "Last", Email: name + "@example.com", Phone: "+34 600 000 000",
	}))
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", name, err)
	}
	return res.Msg.GetUser()
}

// wantCode fails unless err is a Connect error with code whose message starts with prefix.
func wantCode(t testing.TB, err error, code connect.Code, prefix string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v %q", code, prefix)
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a connect error", err)
	}
	if ce.Code() != code || !strings.HasPrefix(ce.Message(), prefix) {
		t.Fatalf("got %v %q, want %v with message starting %q", ce.Code(), ce.Message(), code, prefix)
	}
}

func (e *env) profile(t testing.TB, viewer, user int64) *profilev1.ProfileData {
	t.Helper()
	res, err := e.client.GetProfile(context.Background(), connect.NewRequest(&profilev1.GetProfileRequest{ViewerId: viewer, UserId: user}))
	if err != nil {
		t.Fatalf("GetProfile(%d, %d): %v", viewer, user, err)
	}
	return res.Msg.GetProfile()
}

func (e *env) update(t testing.TB, req *profilev1.UpdateProfileRequest) *profilev1.ProfileData {
	t.Helper()
	res, err := e.client.UpdateProfile(context.Background(), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("UpdateProfile: %v", err)
	}
	return res.Msg.GetProfile()
}
