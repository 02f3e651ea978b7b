package presencesvc

import (
	"context"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// userStream opens StreamUserEvents for edge "w" (after: nil for from now) and returns its
// messages; the stream ends with the test.
func userStream(t *testing.T, h *harness, after *uint64) <-chan *presencev1.StreamUserEventsResponse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *presencev1.StreamUserEventsResponse, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		stream, err := h.client.StreamUserEvents(ctx, connect.NewRequest(&presencev1.StreamUserEventsRequest{EdgeId: "w", AfterPosition: after}))
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("StreamUserEvents: %v", err)
			}
			return
		}
		defer stream.Close()
		for stream.Receive() {
			select {
			case out <- stream.Msg():
			case <-ctx.Done():
				return
			}
		}
		if err := stream.Err(); err != nil && ctx.Err() == nil {
			t.Errorf("StreamUserEvents ended: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return out
}

func receive(t *testing.T, what string, ch <-chan *presencev1.StreamUserEventsResponse) *presencev1.StreamUserEventsResponse {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the stream ended", what)
		}
		return m
	case <-time.After(10 * time.Second): // a bound on the wait, not a speed check
		t.Fatalf("%s: nothing arrived", what)
		panic("unreachable")
	}
}

// receiveEvents reads messages until n events arrived.
func receiveEvents(t *testing.T, ch <-chan *presencev1.StreamUserEventsResponse, n int) []*presencev1.UserEvent {
	t.Helper()
	var out []*presencev1.UserEvent
	for len(out) < n {
		m := receive(t, "events", ch)
		if m.GetStartedAfter() != 0 {
			t.Fatalf("a message after the marker has started_after %d", m.GetStartedAfter())
		}
		out = append(out, m.GetEvents()...)
	}
	if len(out) != n {
		t.Fatalf("got %d events, want %d", len(out), n)
	}
	return out
}

func presenceOf(t *testing.T, ev *presencev1.UserEvent) *presencev1.PresenceEvent {
	t.Helper()
	m := new(presencev1.StreamEventsResponse)
	if err := proto.Unmarshal(ev.GetEvent(), m); err != nil {
		t.Fatalf("event at position %d: %v", ev.GetPosition(), err)
	}
	return m.GetPresence()
}

func TestStreamUserEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.NewURL(t, sqldb.SQLite))
	setup(t, h)
	h.connect(t, "e1", alice, "a-1") // before the stream: not sent from now on
	h.svc.Flush()

	live := userStream(t, h, nil)
	m := receive(t, "marker", live)
	if m.GetStartedAfter() != 2 || len(m.GetEvents()) != 0 {
		t.Fatalf("first message: got %v, want only started_after 2 (alice's event to two contacts)", m)
	}
	h.clock.Advance(time.Second)
	offAt := h.clock.Now().UnixMilli()
	h.disconnect(t, "e1", alice, "a-1")
	evs := receiveEvents(t, live, 2)
	for i, ev := range evs {
		p := presenceOf(t, ev)
		if ev.GetPosition() != uint64(3+i) || ev.GetUserId() != aliceContacts[i] || ev.GetSeq() != 2 ||
			ev.GetService() != EventService || ev.GetTimeMs() != offAt || ev.GetExcludeConnectionId() != "" ||
			p.GetUserId() != alice || p.GetIsOnline() || p.GetLastSeen() != offAt {
			t.Fatalf("event %d: got %v (%v), want alice offline at %d for %d with seq 2 at position %d", i, ev, p, offAt, aliceContacts[i], 3+i)
		}
	}

	// An edge whose stream broke continues from the last position it saw: the rest of
	// the log, then live events.
	after := uint64(1)
	resumed := userStream(t, h, &after)
	if m := receive(t, "marker", resumed); m.GetStartedAfter() != 1 || len(m.GetEvents()) != 0 {
		t.Fatalf("first message of the resumed stream: got %v, want only started_after 1", m)
	}
	h.connect(t, "e1", alice, "a-2")
	var positions []uint64
	for _, ev := range receiveEvents(t, resumed, 5) {
		positions = append(positions, ev.GetPosition())
	}
	if want := []uint64{2, 3, 4, 5, 6}; !slices.Equal(positions, want) {
		t.Fatalf("resumed stream positions: got %v, want %v", positions, want)
	}

	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		req   *presencev1.StreamUserEventsRequest
		want  connect.Code
		field string
	}{
		{"bad edge id", &presencev1.StreamUserEventsRequest{EdgeId: "no spaces"}, connect.CodeInvalidArgument, "edge_id"},
		{"no edge id", &presencev1.StreamUserEventsRequest{}, connect.CodeInvalidArgument, "edge_id"},
		{"position not held", &presencev1.StreamUserEventsRequest{EdgeId: "w", AfterPosition: proto.Uint64(1000)}, connect.CodeOutOfRange, ""},
	} {
		stream, err := h.client.StreamUserEvents(ctx, connect.NewRequest(tt.req))
		if err == nil {
			for stream.Receive() {
				t.Errorf("%s: got %v, want no message", tt.name, stream.Msg())
			}
			err = stream.Err()
			stream.Close()
		}
		if got := codeOf(err); got != tt.want {
			t.Errorf("%s: got %v (%v), want %v", tt.name, got, err, tt.want)
		}
	}
}

func TestReadUserEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.NewURL(t, sqldb.SQLite))
	setup(t, h)
	h.connect(t, "e1", alice, "a-1")
	h.clock.Advance(time.Second)
	offAt := h.clock.Now().UnixMilli()
	h.disconnect(t, "e1", alice, "a-1")
	h.svc.Flush()
	ctx := context.Background()
	read := func(req *presencev1.ReadUserEventsRequest) *presencev1.ReadUserEventsResponse {
		t.Helper()
		res, err := h.client.ReadUserEvents(ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatalf("ReadUserEvents(%v): %v", req, err)
		}
		return res.Msg
	}

	all := read(&presencev1.ReadUserEventsRequest{UserId: watcher})
	if all.GetLastSeq() != 2 || !all.GetComplete() || len(all.GetEvents()) != 2 {
		t.Fatalf("watcher's history: got %v, want two events, complete, last seq 2", all)
	}
	for i, ev := range all.GetEvents() {
		p := presenceOf(t, ev)
		if ev.GetSeq() != uint64(i+1) || ev.GetUserId() != watcher || ev.GetService() != EventService ||
			p.GetUserId() != alice || p.GetIsOnline() != (i == 0) || (i == 1 && p.GetLastSeen() != offAt) {
			t.Fatalf("watcher's event %d: got %v (%v), want alice's transition %d", i, ev, p, i+1)
		}
	}
	tests := []struct {
		name     string
		req      *presencev1.ReadUserEventsRequest
		last     uint64
		complete bool
		seqs     []uint64
	}{
		{"after the first", &presencev1.ReadUserEventsRequest{UserId: watcher, AfterSeq: 1}, 2, true, []uint64{2}},
		{"up to date", &presencev1.ReadUserEventsRequest{UserId: watcher, AfterSeq: 2}, 2, true, nil},
		// last_only reads no record: complete only says whether after_seq is the last seq.
		{"last only", &presencev1.ReadUserEventsRequest{UserId: watcher, LastOnly: true}, 2, false, nil},
		{"last only, up to date", &presencev1.ReadUserEventsRequest{UserId: watcher, AfterSeq: 2, LastOnly: true}, 2, true, nil},
		{"last only, never had an event", &presencev1.ReadUserEventsRequest{UserId: dave, LastOnly: true}, 0, true, nil},
		{"ahead of the history", &presencev1.ReadUserEventsRequest{UserId: watcher, AfterSeq: 3}, 2, false, nil},
		{"offline contact", &presencev1.ReadUserEventsRequest{UserId: bob}, 2, true, []uint64{1, 2}},
		{"never had an event", &presencev1.ReadUserEventsRequest{UserId: dave}, 0, true, nil},
		{"never had an event, ahead", &presencev1.ReadUserEventsRequest{UserId: dave, AfterSeq: 1}, 0, false, nil},
	}
	for _, tt := range tests {
		res := read(tt.req)
		var seqs []uint64
		for _, ev := range res.GetEvents() {
			seqs = append(seqs, ev.GetSeq())
		}
		if res.GetLastSeq() != tt.last || res.GetComplete() != tt.complete || !slices.Equal(seqs, tt.seqs) {
			t.Errorf("%s: got last %d, complete %v, seqs %v; want %d, %v, %v", tt.name, res.GetLastSeq(), res.GetComplete(), seqs, tt.last, tt.complete, tt.seqs)
		}
	}

	// Once the oldest events are beyond the newest DefaultMaxEvents and older than
	// DefaultMaxAge, they are gone: a read from before them is incomplete and returns nothing.
	const user = 7
	for range eventlog.DefaultMaxEvents {
		if _, err := h.rec.Append(ctx, eventlog.Event{Service: "chat"}, []int64{user}); err != nil {
			t.Fatal(err)
		}
	}
	h.clock.Advance(eventlog.DefaultMaxAge + time.Second)
	if _, err := h.rec.Append(ctx, eventlog.Event{Service: "chat"}, []int64{user}); err != nil {
		t.Fatal(err)
	}
	last := uint64(eventlog.DefaultMaxEvents + 1)
	if res := read(&presencev1.ReadUserEventsRequest{UserId: user}); res.GetComplete() || res.GetLastSeq() != last || len(res.GetEvents()) != 0 {
		t.Errorf("read from 0 after retention: got complete %v, last %d, %d events; want incomplete, %d, none", res.GetComplete(), res.GetLastSeq(), len(res.GetEvents()), last)
	}
	if res := read(&presencev1.ReadUserEventsRequest{UserId: user, AfterSeq: 1}); !res.GetComplete() || len(res.GetEvents()) != eventlog.DefaultMaxEvents || res.GetEvents()[0].GetSeq() != 2 {
		t.Errorf("read from 1 after retention: got complete %v, %d events; want complete, the newest %d from seq 2", res.GetComplete(), len(res.GetEvents()), eventlog.DefaultMaxEvents)
	}

	for _, id := range []int64{0, -1} {
		_, err := h.client.ReadUserEvents(ctx, connect.NewRequest(&presencev1.ReadUserEventsRequest{UserId: id}))
		if got := codeOf(err); got != connect.CodeInvalidArgument {
			t.Errorf("ReadUserEvents user %d: got %v (%v), want invalid_argument", id, got, err)
		}
	}
}

// TestOnlineCacheFollowsPresence: another service's OnlineCache over this service learns
// of every transition through the changes announced on the bus.
func TestOnlineCacheFollowsPresence(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.NewURL(t, sqldb.SQLite))
	h.register(t, "e1")
	cache, err := fanout.NewOnlineCache(h.bus, h.client)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	offline := func(want ...int64) {
		t.Helper()
		h.svc.Flush() // the change is announced just after the commit
		got, err := cache.Offline(context.Background(), []int64{alice, bob})
		slices.Sort(got)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("Offline: got %v, %v; want %v", got, err, want)
		}
	}
	offline(alice, bob)
	h.connect(t, "e1", alice, "a-1")
	offline(bob)
	h.connect(t, "e1", bob, "b-1")
	h.disconnect(t, "e1", alice, "a-1")
	offline(alice)
	h.connect(t, "e1", bob, "b-2") // not a transition
	h.disconnect(t, "e1", bob, "b-1")
	offline(alice)
}

// TestConnectAnswersLastSeq: asked to, Connect answers the user's newest event seq, read
// after the connection is recorded (0, present, for a user who never had an event), so an
// edge needs no ReadUserEvents to open a connection without resume; not asked, it reads
// nothing.
func TestConnectAnswersLastSeq(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.NewURL(t, sqldb.SQLite))
	setup(t, h)
	h.connect(t, "e1", alice, "a-1")
	h.disconnect(t, "e1", alice, "a-1")
	h.svc.Flush() // watcher now holds alice's two transitions
	for _, tc := range []struct {
		user int64
		conn string
		want uint64
	}{{watcher, "w-1", 2}, {alice, "a-2", 0}} {
		res, err := h.client.Connect(context.Background(), connect.NewRequest(&presencev1.ConnectRequest{EdgeId: "e1", UserId: tc.user, ConnectionId: tc.conn, WantLastSeq: true}))
		if err != nil {
			t.Fatalf("Connect(user %d): %v", tc.user, err)
		}
		if res.Msg.LastSeq == nil || res.Msg.GetLastSeq() != tc.want {
			t.Fatalf("Connect(user %d): last_seq %v, want %d", tc.user, res.Msg.LastSeq, tc.want)
		}
	}
	// Not asked (a resume, a record made again after a lost lease): nothing is read.
	res, err := h.client.Connect(context.Background(), connect.NewRequest(&presencev1.ConnectRequest{EdgeId: "e1", UserId: watcher, ConnectionId: "w-2"}))
	if err != nil {
		t.Fatalf("Connect without want_last_seq: %v", err)
	}
	if res.Msg.LastSeq != nil {
		t.Fatalf("Connect without want_last_seq: last_seq %d, want absent", res.Msg.GetLastSeq())
	}
}
