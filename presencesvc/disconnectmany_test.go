package presencesvc

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// disconnectManyBatch covers every outcome of Disconnect.
func disconnectManyBatch() []*presencev1.DisconnectRequest {
	return []*presencev1.DisconnectRequest{
		{EdgeId: "e1", UserId: alice, ConnectionId: "a-1"}, // the same user twice:
		{EdgeId: "e2", UserId: alice, ConnectionId: "a-2"}, // only the last goes offline
		{EdgeId: "e1", UserId: bob, ConnectionId: "b-1"},   // the only connection: offline
		{EdgeId: "e1", UserId: 0, ConnectionId: "x"},       // invalid
		{EdgeId: "e2", UserId: alice, ConnectionId: "a-2"}, // a repeat: not offline twice
		{EdgeId: "e1", UserId: carol, ConnectionId: "c-1"}, // c-2 stays: still online
		{EdgeId: "", UserId: carol, ConnectionId: "c-2"},   // invalid: c-2 stays
		{EdgeId: "e1", UserId: dave, ConnectionId: "nope"}, // never recorded: idempotent
		{EdgeId: "e1", UserId: dave, ConnectionId: "c-2"},  // carol's connection id: nothing
		{EdgeId: "e2", UserId: erin, ConnectionId: "e-1"},  // a user never seen: nothing
	}
}

// disconnectManyState prepares a harness for disconnectManyBatch: alice holds a-1 and
// a-2, bob b-1, carol (watcher's contact) c-1 and c-2. It leaves the clock a second past
// the last connection, so that a last_seen set by the batch is told from older ones.
func disconnectManyState(t *testing.T, h *harness) {
	t.Helper()
	setup(t, h)
	h.chat.setContacts(carol, watcher)
	for _, c := range []struct {
		edge string
		user int64
		conn string
	}{{"e1", alice, "a-1"}, {"e2", alice, "a-2"}, {"e1", bob, "b-1"}, {"e1", carol, "c-1"}, {"e2", carol, "c-2"}} {
		h.connect(t, c.edge, c.user, c.conn)
		h.svc.Flush()
		h.clock.Advance(time.Second)
	}
}

// asDisconnectResult is Disconnect's answer as DisconnectMany gives it.
func asDisconnectResult(res *connect.Response[presencev1.DisconnectResponse], err error) *presencev1.DisconnectManyResult {
	if code, msg := itemError(err); code != "" {
		return &presencev1.DisconnectManyResult{ErrorCode: code, ErrorMessage: msg}
	}
	return &presencev1.DisconnectManyResult{Response: res.Msg}
}

// TestDisconnectManyAsDisconnects: DisconnectMany answers each connection exactly as
// Disconnect would have, one after the other in the batch's order (responses, error codes
// and messages), announces the same transitions (user_offline once per user, with the
// batch's time as last_seen) and leaves the same state.
func TestDisconnectManyAsDisconnects(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()

		// The reference: a service of its own, answering each connection with Disconnect.
		ref := newHarness(t, dbtest.NewURL(t, backendOf(url)))
		disconnectManyState(t, ref)
		refBefore := len(ref.rec.all())
		var want []*presencev1.DisconnectManyResult
		for _, req := range disconnectManyBatch() {
			want = append(want, asDisconnectResult(ref.client.Disconnect(ctx, connect.NewRequest(req))))
		}

		h := newHarness(t, url)
		disconnectManyState(t, h)
		before := len(h.rec.all())
		res, err := h.client.DisconnectMany(ctx, connect.NewRequest(&presencev1.DisconnectManyRequest{Connections: disconnectManyBatch()}))
		if err != nil {
			t.Fatalf("DisconnectMany: %v", err)
		}
		got := res.Msg.GetResults()
		if len(got) != len(want) {
			t.Fatalf("DisconnectMany: %d results, want %d", len(got), len(want))
		}
		for i := range got {
			if !proto.Equal(got[i], want[i]) {
				t.Errorf("connection %d: got %v, want %v (as Disconnect)", i, got[i], want[i])
			}
		}
		// Spelled out, so that the reference cannot be wrong in the same way.
		spelled := []struct {
			offline bool
			code    string
		}{
			{false, ""}, {true, ""}, {true, ""}, {false, "invalid_argument"}, {false, ""},
			{false, ""}, {false, "invalid_argument"}, {false, ""}, {false, ""}, {false, ""},
		}
		for i, w := range spelled {
			r := got[i]
			if r.GetErrorCode() != w.code || r.GetResponse().GetBecameOffline() != w.offline || (w.code == "") != (r.GetResponse() != nil) {
				t.Errorf("connection %d: got %v, want code %q, became offline %v", i, r, w.code, w.offline)
			}
		}
		if msg := got[3].GetErrorMessage(); !strings.Contains(msg, "user_id") {
			t.Errorf("invalid connection: message %q, want it to name user_id", msg)
		}
		if msg := got[6].GetErrorMessage(); !strings.Contains(msg, "edge_id") {
			t.Errorf("invalid connection: message %q, want it to name edge_id", msg)
		}

		// The same announcements: alice and bob offline, once each, at the batch's time.
		wantEvents := sortedEvents(ref.rec.all()[refBefore:])
		gotEvents := sortedEvents(h.rec.all()[before:])
		if !reflect.DeepEqual(gotEvents, wantEvents) {
			t.Errorf("events:\n got %+v\nwant %+v", gotEvents, wantEvents)
		}
		now := h.clock.Now().UnixMilli()
		spelledEvents := []presenceEvent{
			{Users: []int64{bob, watcher}, UserID: alice, LastSeen: now},
			{Users: []int64{alice}, UserID: bob, LastSeen: now},
		}
		if !reflect.DeepEqual(gotEvents, spelledEvents) {
			t.Errorf("events: got %+v, want %+v", gotEvents, spelledEvents)
		}
		// The same state.
		users := []int64{alice, bob, carol, dave, erin}
		ps, refPs := h.presence(t, users...), ref.presence(t, users...)
		for i, p := range ps {
			if !proto.Equal(p, refPs[i]) {
				t.Errorf("presence: got %v, want %v", p, refPs[i])
			}
			if wantOnline := users[i] == carol || users[i] == dave; p.GetIsOnline() != wantOnline {
				t.Errorf("presence: got %v, want online %v", p, wantOnline)
			}
		}
		refRoutes := ref.routes(t, users...)
		for i, r := range h.routes(t, users...) {
			if w := refRoutes[i]; !proto.Equal(r, w) {
				t.Errorf("routes: got %v, want %v", r, w)
			}
		}
		if r := h.routes(t, carol)[0]; !slices.Equal(r.GetEdgeIds(), []string{"e2"}) {
			t.Errorf("routes of carol: got %v, want e2 only (c-2 stays)", r)
		}
	})
}

// sortedEvents summarizes evs in user order: announcements about different users leave
// from different workers, in either order.
func sortedEvents(evs []*presencev1.StreamEventsResponse) []presenceEvent {
	out := summarize(evs)
	slices.SortStableFunc(out, func(a, b presenceEvent) int { return cmp.Compare(a.UserID, b.UserID) })
	return out
}

// TestDisconnectManyLimits: an empty batch answers nothing; more than 256 connections
// fail the call as a whole, naming the limit, and remove nothing.
func TestDisconnectManyLimits(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		h := newHarness(t, url)
		h.register(t, "e1")
		ctx := context.Background()
		res, err := h.client.DisconnectMany(ctx, connect.NewRequest(&presencev1.DisconnectManyRequest{}))
		if err != nil || len(res.Msg.GetResults()) != 0 {
			t.Fatalf("empty DisconnectMany: %v, %v; want no results", res, err)
		}
		h.connect(t, "e1", 1, "c")
		many := make([]*presencev1.DisconnectRequest, 257)
		for i := range many {
			many[i] = &presencev1.DisconnectRequest{EdgeId: "e1", UserId: int64(i + 1), ConnectionId: "c"}
		}
		_, err = h.client.DisconnectMany(ctx, connect.NewRequest(&presencev1.DisconnectManyRequest{Connections: many}))
		if codeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "256") {
			t.Fatalf("DisconnectMany of 257: %v, want invalid_argument naming 256", err)
		}
		// Nothing of it was removed.
		if p := h.presence(t, 1)[0]; !p.GetIsOnline() {
			t.Fatalf("after a refused DisconnectMany, user 1 is %v, want online", p)
		}
		res, err = h.client.DisconnectMany(ctx, connect.NewRequest(&presencev1.DisconnectManyRequest{Connections: many[:256]}))
		if err != nil {
			t.Fatalf("DisconnectMany of 256: %v", err)
		}
		for i, r := range res.Msg.GetResults() {
			// Only user 1 holds "c": the others remove nothing.
			if r.GetErrorCode() != "" || r.GetResponse().GetBecameOffline() != (i == 0) {
				t.Fatalf("DisconnectMany of 256, connection %d: %v", i, r)
			}
		}
	})
}
