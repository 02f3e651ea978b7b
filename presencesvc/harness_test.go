package presencesvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb/dbtest"
	"github.com/charla/charla/shared/svc"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeChat is the chat service as presence sees it: fixed contact lists, counted calls.
type fakeChat struct {
	mu         sync.Mutex
	contacts   map[int64][]int64
	fallback   []int64 // contacts of users not in contacts
	listCalls  atomic.Int64
	stopTyping []int64
	failList   atomic.Bool
}

func newFakeChat() *fakeChat { return &fakeChat{contacts: make(map[int64][]int64)} }

func (f *fakeChat) setContacts(user int64, contacts ...int64) {
	f.mu.Lock()
	f.contacts[user] = contacts
	f.mu.Unlock()
}

func (f *fakeChat) ListContactIds(_ context.Context, req *connect.Request[chatv1.ListContactIdsRequest]) (*connect.Response[chatv1.ListContactIdsResponse], error) {
	f.listCalls.Add(1)
	if f.failList.Load() {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("chat is down"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := &chatv1.ListContactIdsResponse{}
	for _, u := range req.Msg.GetUserIds() {
		c, ok := f.contacts[u]
		if !ok {
			c = f.fallback
		}
		res.Contacts = append(res.Contacts, &chatv1.UserContacts{UserId: u, ContactIds: slices.Clone(c)})
	}
	return connect.NewResponse(res), nil
}

func (f *fakeChat) StopTyping(_ context.Context, req *connect.Request[chatv1.StopTypingRequest]) (*connect.Response[chatv1.StopTypingResponse], error) {
	f.mu.Lock()
	f.stopTyping = append(f.stopTyping, req.Msg.GetUserId())
	f.mu.Unlock()
	return connect.NewResponse(&chatv1.StopTypingResponse{}), nil
}

func (f *fakeChat) stopTypingCalls() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.stopTyping)
}

// recorder is the user event log of a harness, in memory. It also records every append as
// one event whose user_ids are the users whose history got it (from the records Append
// returned), so tests see each announcement once, with everyone it was for.
type recorder struct {
	*eventlog.Memory
	notify chan struct{}
	flush  func()

	mu     sync.Mutex
	events []*presencev1.StreamEventsResponse
	// seen, when set (benchmarks), is called with every recorded event.
	seen func(*presencev1.StreamEventsResponse)
}

func (r *recorder) Append(ctx context.Context, ev eventlog.Event, users []int64) ([]eventlog.Record, error) {
	recs, err := r.Memory.Append(ctx, ev, users)
	if err != nil || len(recs) == 0 {
		return recs, err
	}
	msg := new(presencev1.StreamEventsResponse)
	if err := proto.Unmarshal(recs[0].Data, msg); err != nil {
		panic(fmt.Sprintf("undecodable %s event: %v", recs[0].Service, err))
	}
	for _, rec := range recs {
		msg.UserIds = append(msg.UserIds, rec.UserID)
	}
	r.mu.Lock()
	r.events = append(r.events, msg)
	seen := r.seen
	r.mu.Unlock()
	if seen != nil {
		seen(msg)
	}
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return recs, nil
}

func (r *recorder) setSeen(f func(*presencev1.StreamEventsResponse)) {
	r.mu.Lock()
	r.seen = f
	r.mu.Unlock()
}

// all returns the events so far, once every transition committed before the call has
// been announced (announcements leave asynchronously, just after the commit).
func (r *recorder) all() []*presencev1.StreamEventsResponse {
	r.flush()
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// harness is one presence service over a real database, served over HTTP/2.
type harness struct {
	svc    *Service
	client presencev1connect.PresenceServiceClient
	clock  *fakeClock
	chat   *fakeChat
	bus    *bus.InProcess
	// rec is the user event log.
	rec *recorder
}

type harnessOption func(*Options)

func newHarness(tb testing.TB, url string, extra ...harnessOption) *harness {
	tb.Helper()
	ctx := context.Background()
	db := dbtest.OpenURL(tb, url)
	h := &harness{clock: newFakeClock(), chat: newFakeChat(), bus: bus.NewInProcess()}
	h.rec = &recorder{Memory: eventlog.NewMemory(eventlog.Options{Now: h.clock.Now}), notify: make(chan struct{}, 1)}
	opts := Options{
		Now:           h.clock.Now,
		Chat:          h.chat,
		SweepInterval: time.Hour, // tests sweep by hand unless they say otherwise
	}
	for _, o := range extra {
		o(&opts)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := NewWithOptions(ctx, svc.Deps{DB: db, Bus: h.bus, Events: h.rec, Log: log}, opts)
	if err != nil {
		tb.Fatalf("NewWithOptions: %v", err)
	}
	h.svc = s
	h.rec.flush = s.Flush
	// Cleartext HTTP/2, as the internal listeners speak it (rpc.NewServer).
	srv := httptest.NewUnstartedServer(rpc.NewMux(s.RPC()))
	srv.Config.Protocols = rpc.Protocols()
	srv.Start()
	tb.Cleanup(func() {
		srv.Close()
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	h.client = presencev1connect.NewPresenceServiceClient(rpc.NewHTTPClient(), srv.URL)
	return h
}

// history returns the presence events in user's history, in seq order, once every
// transition committed before the call has been announced. It checks that the seqs run
// from 1 without a gap and that every record is a presence event.
func (h *harness) history(tb testing.TB, user int64) []*presencev1.PresenceEvent {
	tb.Helper()
	h.svc.Flush()
	hist, err := h.rec.Read(context.Background(), user, 0)
	if err != nil {
		tb.Fatalf("read the history of user %d: %v", user, err)
	}
	if !hist.Complete || hist.LastSeq != uint64(len(hist.Records)) {
		tb.Fatalf("history of user %d: complete %v, last seq %d, %d records; want complete", user, hist.Complete, hist.LastSeq, len(hist.Records))
	}
	out := make([]*presencev1.PresenceEvent, len(hist.Records))
	for i, r := range hist.Records {
		ev := new(presencev1.StreamEventsResponse)
		if err := proto.Unmarshal(r.Data, ev); err != nil {
			tb.Fatalf("user %d record %d: %v", user, r.Seq, err)
		}
		if r.Seq != uint64(i+1) || r.UserID != user || r.Service != EventService || r.Exclude != "" || ev.GetPresence() == nil {
			tb.Fatalf("user %d record %d: got %+v (%v), want seq %d, a presence event", user, i, r, ev, i+1)
		}
		out[i] = ev.GetPresence()
	}
	return out
}

func (h *harness) register(tb testing.TB, edgeID string) {
	tb.Helper()
	res, err := h.client.RegisterEdge(context.Background(), connect.NewRequest(&presencev1.RegisterEdgeRequest{EdgeId: edgeID}))
	if err != nil {
		tb.Fatalf("RegisterEdge(%s): %v", edgeID, err)
	}
	if got, want := res.Msg.GetLeaseMs(), h.svc.lease().Milliseconds(); got != want {
		tb.Fatalf("RegisterEdge lease_ms = %d, want %d", got, want)
	}
}

func (h *harness) heartbeat(edgeID string) error {
	_, err := h.client.Heartbeat(context.Background(), connect.NewRequest(&presencev1.HeartbeatRequest{EdgeId: edgeID}))
	return err
}

func (h *harness) connect(tb testing.TB, edgeID string, user int64, conn string) bool {
	tb.Helper()
	res, err := h.client.Connect(context.Background(), connect.NewRequest(&presencev1.ConnectRequest{EdgeId: edgeID, UserId: user, ConnectionId: conn}))
	if err != nil {
		tb.Fatalf("Connect(%s, %d, %s): %v", edgeID, user, conn, err)
	}
	return res.Msg.GetBecameOnline()
}

func (h *harness) disconnect(tb testing.TB, edgeID string, user int64, conn string) bool {
	tb.Helper()
	res, err := h.client.Disconnect(context.Background(), connect.NewRequest(&presencev1.DisconnectRequest{EdgeId: edgeID, UserId: user, ConnectionId: conn}))
	if err != nil {
		tb.Fatalf("Disconnect(%s, %d, %s): %v", edgeID, user, conn, err)
	}
	return res.Msg.GetBecameOffline()
}

func (h *harness) presence(tb testing.TB, users ...int64) []*presencev1.Presence {
	tb.Helper()
	res, err := h.client.GetPresence(context.Background(), connect.NewRequest(&presencev1.GetPresenceRequest{UserIds: users}))
	if err != nil {
		tb.Fatalf("GetPresence(%v): %v", users, err)
	}
	return res.Msg.GetPresences()
}

func (h *harness) routes(tb testing.TB, users ...int64) []*presencev1.Route {
	tb.Helper()
	res, err := h.client.GetRoutes(context.Background(), connect.NewRequest(&presencev1.GetRoutesRequest{UserIds: users}))
	if err != nil {
		tb.Fatalf("GetRoutes(%v): %v", users, err)
	}
	return res.Msg.GetRoutes()
}

// presenceEvent is an event reduced to what tests compare.
type presenceEvent struct {
	Users    []int64
	UserID   int64
	Online   bool
	LastSeen int64
}

func summarize(evs []*presencev1.StreamEventsResponse) []presenceEvent {
	out := make([]presenceEvent, 0, len(evs))
	for _, ev := range evs {
		p := ev.GetPresence()
		users := slices.Clone(ev.GetUserIds())
		slices.Sort(users)
		out = append(out, presenceEvent{Users: users, UserID: p.GetUserId(), Online: p.GetIsOnline(), LastSeen: p.GetLastSeen()})
	}
	return out
}

func codeOf(err error) connect.Code {
	if err == nil {
		return 0
	}
	return connect.CodeOf(err)
}
