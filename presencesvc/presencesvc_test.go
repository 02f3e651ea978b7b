package presencesvc

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/presencesvc/internal/presence"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

const (
	alice   = int64(1)
	bob     = int64(2)   // alice's contact, offline
	watcher = int64(100) // alice's contact, online on edge "w"
	dave    = int64(200) // not a contact of anyone, online on edge "w"
)

// aliceContacts are told of alice's transitions: all her contacts, online or not (each
// event goes into their histories, for resume).
var aliceContacts = []int64{bob, watcher}

// setup registers edges e1, e2 and w, puts watcher and dave online on w and returns the
// recorder of the harness's event log.
func setup(t *testing.T, h *harness) *recorder {
	t.Helper()
	for _, e := range []string{"e1", "e2", "w"} {
		h.register(t, e)
	}
	h.chat.setContacts(alice, watcher, bob)
	h.chat.setContacts(bob, alice)
	h.connect(t, "w", watcher, "watcher-1")
	h.connect(t, "w", dave, "dave-1")
	return h.rec
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		h := newHarness(t, url)
		rec := setup(t, h)

		if got := h.connect(t, "e1", alice, "a-1"); !got {
			t.Fatalf("first Connect became_online = %v, want true", got)
		}
		online := h.presence(t, alice)[0]
		if !online.GetIsOnline() || online.GetLastSeen() != 0 {
			t.Fatalf("after connect GetPresence = %v, want online with last_seen 0", online)
		}
		steps := []struct {
			name string
			do   func() bool
			want bool
		}{
			{"second tab on another edge", func() bool { return h.connect(t, "e2", alice, "a-2") }, false},
			{"repeated connect", func() bool { return h.connect(t, "e2", alice, "a-2") }, false},
			{"first tab closes", func() bool { return h.disconnect(t, "e1", alice, "a-1") }, false},
			{"first tab closes again", func() bool { return h.disconnect(t, "e1", alice, "a-1") }, false},
		}
		for _, s := range steps {
			if got := s.do(); got != s.want {
				t.Fatalf("%s: got %v, want %v", s.name, got, s.want)
			}
		}
		h.clock.Advance(1234 * time.Millisecond)
		offAt := h.clock.Now().UnixMilli()
		if got := h.disconnect(t, "e2", alice, "a-2"); !got {
			t.Fatalf("last Disconnect became_offline = %v, want true", got)
		}
		if got := h.disconnect(t, "e2", alice, "a-2"); got {
			t.Fatalf("repeated last Disconnect became_offline = %v, want false", got)
		}
		want := []presenceEvent{
			{Users: aliceContacts, UserID: alice, Online: true},
			{Users: aliceContacts, UserID: alice, Online: false, LastSeen: offAt},
		}
		if got := summarize(rec.all()); !reflect.DeepEqual(got, want) {
			t.Fatalf("events:\n got %+v\nwant %+v", got, want)
		}
		// Each contact's history holds both, in order, with seqs 1 and 2.
		for _, c := range aliceContacts {
			hist := h.history(t, c)
			if len(hist) != 2 || hist[0].GetUserId() != alice || !hist[0].GetIsOnline() ||
				hist[1].GetUserId() != alice || hist[1].GetIsOnline() || hist[1].GetLastSeen() != offAt {
				t.Fatalf("history of %d: got %v, want alice online then offline at %d", c, hist, offAt)
			}
		}
		h.svc.Flush()
		if got, want := h.chat.stopTypingCalls(), []int64{alice}; !slices.Equal(got, want) {
			t.Fatalf("StopTyping calls = %v, want %v", got, want)
		}
		p := h.presence(t, alice)[0]
		if p.GetIsOnline() || p.GetLastSeen() != offAt {
			t.Fatalf("after last disconnect GetPresence = %v, want offline with last_seen %d", p, offAt)
		}

		// Online again: LastSeen keeps the last time the user went offline.
		h.clock.Advance(time.Second)
		if got := h.connect(t, "e1", alice, "a-3"); !got {
			t.Fatalf("reconnect became_online = %v, want true", got)
		}
		p = h.presence(t, alice)[0]
		if !p.GetIsOnline() || p.GetLastSeen() != offAt {
			t.Fatalf("online again GetPresence = %v, want online with last_seen %d", p, offAt)
		}
		// dave, no one's contact, never got an event.
		for _, ev := range summarize(rec.all()) {
			if slices.Contains(ev.Users, dave) {
				t.Fatalf("dave (not a contact) got %+v", ev)
			}
		}
		if hist := h.history(t, dave); len(hist) != 0 {
			t.Fatalf("history of dave: got %v, want none", hist)
		}
	})
}

func TestAnnouncementSurvivesChatFailure(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		h := newHarness(t, url)
		rec := setup(t, h)
		h.chat.failList.Store(true)
		if got := h.connect(t, "e1", alice, "a-1"); !got {
			t.Fatalf("Connect with chat down: became_online = %v, want true", got)
		}
		if got := len(rec.all()); got != 0 {
			t.Fatalf("events with chat down = %d, want 0", got)
		}
		if p := h.presence(t, alice)[0]; !p.GetIsOnline() {
			t.Fatalf("GetPresence = %v, want online", p)
		}
	})
}

func TestErrors(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		h := newHarness(t, url)
		h.register(t, "e1")
		h.connect(t, "e1", alice, "a-1")
		ctx := context.Background()
		connectReq := func(edge string, user int64, conn string) error {
			_, err := h.client.Connect(ctx, connect.NewRequest(&presencev1.ConnectRequest{EdgeId: edge, UserId: user, ConnectionId: conn}))
			return err
		}
		disconnectReq := func(edge string, user int64, conn string) error {
			_, err := h.client.Disconnect(ctx, connect.NewRequest(&presencev1.DisconnectRequest{EdgeId: edge, UserId: user, ConnectionId: conn}))
			return err
		}
		tests := []struct {
			name string
			err  error
			want connect.Code
		}{
			{"connect bad edge id", connectReq("no spaces", alice, "x"), connect.CodeInvalidArgument},
			{"connect empty edge id", connectReq("", alice, "x"), connect.CodeInvalidArgument},
			{"connect user 0", connectReq("e1", 0, "x"), connect.CodeInvalidArgument},
			{"connect empty connection", connectReq("e1", alice, ""), connect.CodeInvalidArgument},
			{"connect long connection", connectReq("e1", alice, string(make([]byte, 129))), connect.CodeInvalidArgument},
			{"connect invalid before unknown edge", connectReq("nope", -1, "x"), connect.CodeInvalidArgument},
			{"connect unregistered edge", connectReq("nope", alice, "x"), connect.CodeNotFound},
			{"connection id of another user", connectReq("e1", bob, "a-1"), connect.CodeAlreadyExists},
			{"disconnect bad user", disconnectReq("e1", 0, "a-1"), connect.CodeInvalidArgument},
			{"disconnect unknown", disconnectReq("e1", bob, "zzz"), 0},
			{"heartbeat unknown edge", h.heartbeat("nope"), connect.CodeNotFound},
			{"heartbeat bad edge", h.heartbeat("a/b"), connect.CodeInvalidArgument},
			{"heartbeat live edge", h.heartbeat("e1"), 0},
		}
		for _, tt := range tests {
			if got := codeOf(tt.err); got != tt.want {
				t.Errorf("%s: code %v (%v), want %v", tt.name, got, tt.err, tt.want)
			}
		}
		_, err := h.client.GetPresence(ctx, connect.NewRequest(&presencev1.GetPresenceRequest{UserIds: []int64{1, 0}}))
		if got, want := codeOf(err), connect.CodeInvalidArgument; got != want {
			t.Errorf("GetPresence with id 0: code %v, want %v", got, want)
		}
		_, err = h.client.GetRoutes(ctx, connect.NewRequest(&presencev1.GetRoutesRequest{UserIds: make([]int64, 10001)}))
		if got, want := codeOf(err), connect.CodeInvalidArgument; got != want {
			t.Errorf("GetRoutes with 10001 ids: code %v, want %v", got, want)
		}
	})
}

func TestGetPresenceAndRoutes(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		h := newHarness(t, url)
		for _, e := range []string{"e1", "e2", "e3"} {
			h.register(t, e)
		}
		h.connect(t, "e1", alice, "a-1")
		h.connect(t, "e2", alice, "a-2")
		h.connect(t, "e2", alice, "a-3")
		h.connect(t, "e1", bob, "b-1")
		h.clock.Advance(time.Second)
		bobOff := h.clock.Now().UnixMilli()
		h.disconnect(t, "e1", bob, "b-1")
		h.connect(t, "e3", 3, "c-1")

		got := h.presence(t, 999, bob, alice, 999, 3)
		want := []struct {
			user     int64
			online   bool
			lastSeen int64
		}{{999, false, 0}, {bob, false, bobOff}, {alice, true, 0}, {999, false, 0}, {3, true, 0}}
		if len(got) != len(want) {
			t.Fatalf("GetPresence returned %d entries, want %d", len(got), len(want))
		}
		for i, w := range want {
			if g := got[i]; g.GetUserId() != w.user || g.GetIsOnline() != w.online || g.GetLastSeen() != w.lastSeen {
				t.Errorf("GetPresence[%d] = %v, want %+v", i, g, w)
			}
		}
		if got := h.presence(t); len(got) != 0 {
			t.Errorf("GetPresence() = %v, want empty", got)
		}

		// e3's lease runs out and the sweeper ends it: its user has no route any more.
		// (Until the sweeper ends it, a late heartbeat would renew it, TestLateHeartbeat.)
		h.clock.Advance(h.svc.lease() - 2*time.Second)
		for _, e := range []string{"e1", "e2"} {
			if err := h.heartbeat(e); err != nil {
				t.Fatalf("Heartbeat(%s): %v", e, err)
			}
		}
		h.clock.Advance(3 * time.Second)
		if r := h.routes(t, 3); !slices.Equal(r[0].GetEdgeIds(), []string{"e3"}) {
			t.Fatalf("GetRoutes(3) before the sweep = %v, want e3 still", r)
		}
		if err := h.svc.Sweep(context.Background()); err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		routes := h.routes(t, 3, alice, 999, bob)
		wantRoutes := map[int]struct {
			user  int64
			edges []string
		}{0: {3, nil}, 1: {alice, []string{"e1", "e2"}}, 2: {999, nil}, 3: {bob, nil}}
		if len(routes) != len(wantRoutes) {
			t.Fatalf("GetRoutes returned %d entries, want %d", len(routes), len(wantRoutes))
		}
		for i, w := range wantRoutes {
			if g := routes[i]; g.GetUserId() != w.user || !slices.Equal(g.GetEdgeIds(), w.edges) {
				t.Errorf("GetRoutes[%d] = %v, want %+v", i, g, w)
			}
		}
	})
}

func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		h := newHarness(t, url)
		rec := setup(t, h)
		h.chat.setContacts(3, watcher)
		h.connect(t, "e1", alice, "a-1")
		h.connect(t, "e1", alice, "a-2")
		h.connect(t, "e1", 3, "c-1")
		h.connect(t, "e2", 3, "c-2") // stays online through e2
		before := len(rec.all())

		// e1 stops heartbeating; e2 and w keep going.
		lease := h.svc.lease()
		h.clock.Advance(lease - time.Second)
		for _, e := range []string{"e2", "w"} {
			if err := h.heartbeat(e); err != nil {
				t.Fatalf("Heartbeat(%s): %v", e, err)
			}
		}
		h.clock.Advance(2 * time.Second)
		deadAt := h.clock.Now().UnixMilli()
		if err := h.svc.Sweep(context.Background()); err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		want := []presenceEvent{{Users: aliceContacts, UserID: alice, Online: false, LastSeen: deadAt}}
		if got := summarize(rec.all()[before:]); !reflect.DeepEqual(got, want) {
			t.Fatalf("events after e1 died:\n got %+v\nwant %+v", got, want)
		}
		ps := h.presence(t, alice, 3)
		if ps[0].GetIsOnline() || ps[0].GetLastSeen() != deadAt || !ps[1].GetIsOnline() {
			t.Fatalf("GetPresence after sweep = %v, want alice offline at %d, 3 online", ps, deadAt)
		}
		// A second sweep (another instance, say) announces nothing more.
		if err := h.svc.Sweep(context.Background()); err != nil {
			t.Fatalf("second Sweep: %v", err)
		}
		if got := len(rec.all()) - before; got != 1 {
			t.Fatalf("events after second sweep = %d, want 1", got)
		}
		if got, want := codeOf(h.heartbeat("e1")), connect.CodeNotFound; got != want {
			t.Fatalf("Heartbeat of dead edge: code %v, want %v", got, want)
		}
		_, err := h.client.Connect(context.Background(), connect.NewRequest(&presencev1.ConnectRequest{EdgeId: "e1", UserId: alice, ConnectionId: "a-9"}))
		if got, want := codeOf(err), connect.CodeNotFound; got != want {
			t.Fatalf("Connect on dead edge: code %v, want %v", got, want)
		}
		// The edge registers again and works.
		h.register(t, "e1")
		if got := h.connect(t, "e1", alice, "a-9"); !got {
			t.Fatalf("Connect after re-register became_online = %v, want true", got)
		}
		// Long after, the dead edge's row is cleaned up; a live one is not.
		h.clock.Advance(3 * lease)
		if err := h.svc.Sweep(context.Background()); err != nil {
			t.Fatalf("late Sweep: %v", err)
		}
		if p := h.presence(t, alice, watcher, 3); p[0].GetIsOnline() || p[1].GetIsOnline() || p[2].GetIsOnline() {
			t.Fatalf("after every lease ended GetPresence = %v, want all offline", p)
		}
	})
}

func TestBackgroundSweeper(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		h := newHarness(t, url, func(o *Options) { o.SweepInterval = 10 * time.Millisecond })
		rec := setup(t, h)
		h.connect(t, "e1", alice, "a-1")
		h.clock.Advance(h.svc.lease() - time.Second)
		if err := h.heartbeat("w"); err != nil {
			t.Fatalf("Heartbeat(w): %v", err)
		}
		h.clock.Advance(2 * time.Second)
		deadline := time.After(20 * time.Second) // a bound on the wait, not a speed check
		for {
			evs := summarize(rec.all())
			if len(evs) == 2 {
				if ev := evs[1]; ev.UserID != alice || ev.Online {
					t.Fatalf("event = %+v, want alice offline", ev)
				}
				return
			}
			select {
			case <-rec.notify:
			case <-deadline:
				t.Fatalf("no offline event from the background sweeper; events %+v", evs)
			}
		}
	})
}

// TestReRegisterKeepsConnections: an edge that registers again (it lost its lease, or its
// RegisterEdge answer was lost) keeps the connections it recorded: nobody is announced
// offline, routes stay, and the edge's own Disconnect of a closed one still works.
func TestReRegisterKeepsConnections(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		h := newHarness(t, url)
		rec := setup(t, h)
		h.chat.setContacts(3, watcher)
		h.connect(t, "e1", alice, "a-1")
		h.connect(t, "e2", alice, "a-2")
		h.connect(t, "e1", 3, "c-1")
		before := len(rec.all())

		h.clock.Advance(time.Second)
		h.register(t, "e1")
		if got := summarize(rec.all()[before:]); len(got) != 0 {
			t.Fatalf("events on re-registration: got %+v, want none", got)
		}
		if r := h.routes(t, alice, 3); !slices.Equal(r[0].GetEdgeIds(), []string{"e1", "e2"}) || !slices.Equal(r[1].GetEdgeIds(), []string{"e1"}) {
			t.Fatalf("GetRoutes after re-registration = %v, want alice on e1 and e2, 3 on e1", r)
		}
		if p := h.presence(t, 3); !p[0].GetIsOnline() {
			t.Fatalf("GetPresence(3) after re-registration = %v, want online", p)
		}
		if got := h.connect(t, "e1", 3, "c-1"); got {
			t.Fatalf("recording c-1 again became_online = %v, want false", got)
		}
		if got := h.disconnect(t, "e1", 3, "c-1"); !got {
			t.Fatalf("Disconnect of 3's last connection became_offline = %v, want true", got)
		}
	})
}

// TestLateHeartbeat: a lease past its time that the sweeper has not ended yet (an outage
// kept the edge from renewing) is renewed by a late heartbeat, and its users never go
// offline.
func TestLateHeartbeat(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		h := newHarness(t, url)
		rec := setup(t, h)
		h.connect(t, "e1", alice, "a-1")
		before := len(rec.all())
		h.clock.Advance(h.svc.lease() + time.Second)
		if err := h.heartbeat("e1"); err != nil {
			t.Fatalf("late Heartbeat: %v", err)
		}
		for _, e := range []string{"e2", "w"} {
			_ = h.heartbeat(e)
		}
		if err := h.svc.Sweep(context.Background()); err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		if got := summarize(rec.all()[before:]); len(got) != 0 {
			t.Fatalf("events: got %+v, want none", got)
		}
		if p := h.presence(t, alice); !p[0].GetIsOnline() {
			t.Fatalf("GetPresence(alice) = %v, want online", p)
		}
	})
}

// flakyStore fails lease renewals and sweeps while down, as a database outage would.
type flakyStore struct {
	presence.Store
	down atomic.Bool
}

var errStoreDown = fmt.Errorf("renew lease: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})

func (f *flakyStore) Heartbeat(ctx context.Context, edgeID string, leaseUntil int64) error {
	if f.down.Load() {
		return errStoreDown
	}
	return f.Store.Heartbeat(ctx, edgeID, leaseUntil)
}

func (f *flakyStore) DeadConnectionUsers(ctx context.Context, limit int) ([]int64, error) {
	if f.down.Load() {
		return nil, errStoreDown
	}
	return f.Store.DeadConnectionUsers(ctx, limit)
}

func (f *flakyStore) EndLeases(ctx context.Context, now int64) (int64, error) {
	if f.down.Load() {
		return 0, errStoreDown
	}
	return f.Store.EndLeases(ctx, now)
}

// TestSweepHoldsOffAfterOutage: leases that ran out while the database was away are not
// ended until a lease length after it came back, so the edges renew them in time and
// their users are never shown offline (the "database frozen 25 s" drill). An edge that
// stays silent is ended after that.
func TestSweepHoldsOffAfterOutage(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		var store *flakyStore
		h := newHarness(t, url, func(o *Options) {
			o.wrapStore = func(s presence.Store) presence.Store { store = &flakyStore{Store: s}; return store }
		})
		rec := setup(t, h)
		h.chat.setContacts(bob, watcher)
		h.connect(t, "e1", alice, "a-1")
		h.connect(t, "e2", bob, "b-1")
		before := len(rec.all())
		lease := h.svc.lease()
		h.clock.Advance(lease) // past the hold-off of the service's start

		// The database goes away for longer than a lease: no heartbeat lands.
		store.down.Store(true)
		for range 3 {
			h.clock.Advance(lease / 2)
			if got := codeOf(h.heartbeat("e1")); got != connect.CodeUnavailable {
				t.Fatalf("Heartbeat while the database is away: code %v, want unavailable", got)
			}
			if err := h.svc.Sweep(context.Background()); err == nil {
				t.Fatal("Sweep while the database is away succeeded, want an error")
			}
		}
		store.down.Store(false)
		// Back: every lease is past its time, yet the sweeper holds off.
		if err := h.svc.Sweep(context.Background()); err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		if got := summarize(rec.all()[before:]); len(got) != 0 {
			t.Fatalf("events right after the outage: got %+v, want none", got)
		}
		// e1 and w renew; e2 never does.
		h.clock.Advance(time.Second)
		for _, e := range []string{"e1", "w"} {
			if err := h.heartbeat(e); err != nil {
				t.Fatalf("Heartbeat(%s) after the outage: %v", e, err)
			}
		}
		h.clock.Advance(lease)
		for _, e := range []string{"e1", "w"} {
			if err := h.heartbeat(e); err != nil {
				t.Fatalf("Heartbeat(%s): %v", e, err)
			}
		}
		if err := h.svc.Sweep(context.Background()); err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		got := summarize(rec.all()[before:])
		if len(got) != 1 || got[0].UserID != bob || got[0].Online {
			t.Fatalf("events once the hold-off is over: got %+v, want only bob offline", got)
		}
		if p := h.presence(t, alice, bob); !p[0].GetIsOnline() || p[1].GetIsOnline() {
			t.Fatalf("GetPresence = %v, want alice online, bob offline", p)
		}
	})
}

// TestConcurrentSameUser connects and disconnects one user from many goroutines at once, on
// two edges: every transition is reported exactly once and announced exactly once, in
// alternation, and the final state is right.
func TestConcurrentSameUser(t *testing.T) {
	t.Parallel()
	for _, leaveOpen := range []bool{false, true} {
		t.Run(fmt.Sprintf("leaveOpen=%v", leaveOpen), func(t *testing.T) {
			t.Parallel()
			dbtest.ForEachBackend(t, func(t *testing.T, url string) {
				h := newHarness(t, url)
				rec := setup(t, h)
				const goroutines, rounds = 12, 15
				var onlines, offlines atomic.Int64
				var wg sync.WaitGroup
				for g := range goroutines {
					wg.Go(func() {
						edge := []string{"e1", "e2"}[g%2]
						for r := range rounds {
							conn := fmt.Sprintf("g%d-r%d", g, r)
							if h.connect(t, edge, alice, conn) {
								onlines.Add(1)
							}
							if leaveOpen && g == 0 && r == rounds-1 {
								continue
							}
							if h.disconnect(t, edge, alice, conn) {
								offlines.Add(1)
							}
						}
					})
				}
				wg.Wait()
				evs := summarize(rec.all())
				var evOn, evOff int64
				for i, ev := range evs {
					if ev.UserID != alice {
						t.Fatalf("event %d about user %d, want %d", i, ev.UserID, alice)
					}
					if want := i%2 == 0; ev.Online != want {
						t.Fatalf("event %d online = %v, want %v (events must alternate)", i, ev.Online, want)
					}
					if ev.Online {
						evOn++
					} else {
						evOff++
					}
				}
				if onlines.Load() != evOn || offlines.Load() != evOff {
					t.Fatalf("responses: %d online, %d offline; events: %d online, %d offline",
						onlines.Load(), offlines.Load(), evOn, evOff)
				}
				wantDiff := int64(0)
				if leaveOpen {
					wantDiff = 1
				}
				if got := onlines.Load() - offlines.Load(); got != wantDiff || onlines.Load() == 0 {
					t.Fatalf("onlines - offlines = %d (onlines %d), want %d", got, onlines.Load(), wantDiff)
				}
				if p := h.presence(t, alice)[0]; p.GetIsOnline() != leaveOpen {
					t.Fatalf("final GetPresence = %v, want online %v", p, leaveOpen)
				}
				r := h.routes(t, alice)[0]
				if got := len(r.GetEdgeIds()) > 0; got != leaveOpen {
					t.Fatalf("final GetRoutes = %v, want routed %v", r, leaveOpen)
				}
			})
		})
	}
}

// TestFanOutToManyContacts tells 1,000 contacts, half of them online on four edges, with
// one ListContactIds call and one log append: each contact gets the event as its next seq.
func TestFanOutToManyContacts(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		h := newHarness(t, url)
		edges := []string{"f0", "f1", "f2", "f3"}
		for _, e := range edges {
			h.register(t, e)
		}
		online := connectContacts(t, h, edges, 500)
		contacts := slices.Clone(online)
		for i := range 500 {
			contacts = append(contacts, int64(5001+i)) // never connected
		}
		h.chat.setContacts(alice, contacts...)
		h.register(t, "e1")

		before := len(h.rec.all()) // the contacts have no contacts: nothing
		lists := h.chat.listCalls.Load()
		if got := h.connect(t, "e1", alice, "a-1"); !got {
			t.Fatalf("Connect became_online = %v, want true", got)
		}
		evs := summarize(h.rec.all()[before:])
		if got := h.chat.listCalls.Load() - lists; got != 1 {
			t.Errorf("ListContactIds calls = %d, want 1", got)
		}
		if len(evs) != 1 {
			t.Fatalf("log appends = %d, want 1", len(evs))
		}
		if ev := evs[0]; ev.UserID != alice || !ev.Online {
			t.Fatalf("event %+v, want alice online", ev)
		}
		slices.Sort(contacts)
		if !slices.Equal(evs[0].Users, contacts) {
			t.Fatalf("told %d users, want the %d contacts exactly", len(evs[0].Users), len(contacts))
		}
		for _, c := range []int64{online[0], online[499], 5001, 5500} {
			if hist := h.history(t, c); len(hist) != 1 || hist[0].GetUserId() != alice || !hist[0].GetIsOnline() {
				t.Fatalf("history of contact %d: got %v, want alice online as seq 1", c, hist)
			}
		}
	})
}

// connectContacts puts n users (ids from 1001) online, spread over edges, and returns them.
func connectContacts(tb testing.TB, h *harness, edges []string, n int) []int64 {
	tb.Helper()
	users := make([]int64, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		users[i] = int64(1001 + i)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			h.connect(tb, edges[i%len(edges)], users[i], fmt.Sprintf("contact-%d", i))
		})
	}
	wg.Wait()
	return users
}

// TestCloseDrainsAnnouncements closes the service right after a transition: the event,
// still queued when Close starts, is published before Close returns.
func TestCloseDrainsAnnouncements(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		h := newHarness(t, url)
		rec := setup(t, h)
		h.svc.Flush()
		if got := h.connect(t, "e1", alice, "a-1"); !got {
			t.Fatalf("Connect became_online = %v, want true", got)
		}
		if err := h.svc.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		want := []presenceEvent{{Users: aliceContacts, UserID: alice, Online: true}}
		if got := summarize(rec.all()); !reflect.DeepEqual(got, want) {
			t.Fatalf("events after Close:\n got %+v\nwant %+v", got, want)
		}
	})
}
