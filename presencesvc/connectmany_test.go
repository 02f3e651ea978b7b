package presencesvc

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

const (
	carol = int64(3) // watcher's contact, new in the batch
	erin  = int64(4) // no one's contact, new in the batch with two connections
)

// connectManyBatch covers every outcome of Connect, in an order where each user's event
// history stays still during the batch wherever last_seq is asked (announcements leave
// after the commit, so a history that a batch changes could be read before or after).
func connectManyBatch() []*presencev1.ConnectRequest {
	return []*presencev1.ConnectRequest{
		{EdgeId: "e1", UserId: carol, ConnectionId: "c-1", WantLastSeq: true}, // online
		{EdgeId: "e1", UserId: bob, ConnectionId: "b-3", WantLastSeq: true},   // a third: b-1 is closed
		{EdgeId: "e2", UserId: erin, ConnectionId: "e-1"},                     // the same user twice:
		{EdgeId: "e2", UserId: erin, ConnectionId: "e-2", WantLastSeq: true},  // only the first goes online
		{EdgeId: "e1", UserId: 0, ConnectionId: "x"},                          // invalid
		{EdgeId: "nope", UserId: dave, ConnectionId: "d-x"},                   // no lease
		{EdgeId: "e1", UserId: dave, ConnectionId: "b-1"},                     // bob's connection id
		{EdgeId: "w", UserId: dave, ConnectionId: "d-2", WantLastSeq: true},   // a second connection
	}
}

// connectManyState prepares a harness for connectManyBatch: alice came and went (bob and
// watcher hold two events each), bob holds two connections (the cap), carol is watcher's
// contact. It returns the close events sent to edge e1, gathered as they are published.
func connectManyState(t *testing.T, h *harness) func() []*presencev1.CloseConnectionEvent {
	t.Helper()
	setup(t, h)
	h.chat.setContacts(carol, watcher)
	// Each step announced before the next, so that the events keep one order.
	for _, step := range []func(){
		func() { h.connect(t, "e1", alice, "a-1") },
		func() { h.disconnect(t, "e1", alice, "a-1") },
		func() { h.connect(t, "e1", bob, "b-1") },
		func() { h.connect(t, "e1", bob, "b-2") },
	} {
		step()
		h.svc.Flush()
		h.clock.Advance(time.Second)
	}
	var mu sync.Mutex
	var closes []*presencev1.CloseConnectionEvent
	sub, err := h.bus.Subscribe(fanout.Subject(EventService, "e1"), func(data []byte) {
		ev := new(presencev1.StreamEventsResponse)
		if err := proto.Unmarshal(data, ev); err != nil {
			t.Errorf("undecodable event to e1: %v", err)
			return
		}
		mu.Lock()
		closes = append(closes, ev.GetCloseConnection())
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return func() []*presencev1.CloseConnectionEvent {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(closes)
	}
}

// itemError is a single call's error as its batch call gives it (error_code and
// error_message), "" for none.
func itemError(err error) (code, msg string) {
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return ce.Code().String(), ce.Message()
	case err != nil:
		return "not a connect error: " + err.Error(), ""
	}
	return "", ""
}

// asResult is Connect's answer as ConnectMany gives it.
func asResult(res *connect.Response[presencev1.ConnectResponse], err error) *presencev1.ConnectManyResult {
	if code, msg := itemError(err); code != "" {
		return &presencev1.ConnectManyResult{ErrorCode: code, ErrorMessage: msg}
	}
	return &presencev1.ConnectManyResult{Response: res.Msg}
}

// TestConnectManyAsConnects: ConnectMany answers each connection exactly as Connect
// would have, one after the other in the batch's order (responses, last seqs, error codes
// and messages), announces the same transitions, applies the same connection cap and
// leaves the same state.
func TestConnectManyAsConnects(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		capTwo := func(o *Options) { o.MaxConnectionsPerUser = 2 }
		ctx := context.Background()

		// The reference: a service of its own, answering each connection with Connect.
		ref := newHarness(t, dbtest.NewURL(t, backendOf(url)), capTwo)
		refCloses := connectManyState(t, ref)
		var want []*presencev1.ConnectManyResult
		for _, req := range connectManyBatch() {
			want = append(want, asResult(ref.client.Connect(ctx, connect.NewRequest(req))))
		}

		h := newHarness(t, url, capTwo)
		closes := connectManyState(t, h)
		res, err := h.client.ConnectMany(ctx, connect.NewRequest(&presencev1.ConnectManyRequest{Connections: connectManyBatch()}))
		if err != nil {
			t.Fatalf("ConnectMany: %v", err)
		}
		got := res.Msg.GetResults()
		if len(got) != len(want) {
			t.Fatalf("ConnectMany: %d results, want %d", len(got), len(want))
		}
		for i := range got {
			if !proto.Equal(got[i], want[i]) {
				t.Errorf("connection %d: got %v, want %v (as Connect)", i, got[i], want[i])
			}
		}
		// Spelled out, so that the reference cannot be wrong in the same way.
		zero, two := uint64(0), uint64(2)
		spelled := []struct {
			online bool
			last   *uint64
			code   string
		}{
			{true, &zero, ""}, {false, &two, ""}, {true, nil, ""}, {false, &zero, ""},
			{false, nil, "invalid_argument"}, {false, nil, "not_found"}, {false, nil, "already_exists"}, {false, &zero, ""},
		}
		for i, w := range spelled {
			r := got[i]
			var last *uint64
			if r.GetResponse() != nil {
				last = r.GetResponse().LastSeq
			}
			if r.GetErrorCode() != w.code || r.GetResponse().GetBecameOnline() != w.online ||
				(w.last == nil) != (last == nil) || (w.last != nil && *w.last != *last) {
				t.Errorf("connection %d: got %v, want code %q, became online %v, last seq %v", i, r, w.code, w.online, w.last)
			}
		}
		if msg := got[4].GetErrorMessage(); !strings.Contains(msg, "user_id") {
			t.Errorf("invalid connection: message %q, want it to name user_id", msg)
		}

		// The same announcements: carol and erin online, to carol's contact only.
		wantEvents := summarize(ref.rec.all())
		gotEvents := summarize(h.rec.all())
		if !reflect.DeepEqual(gotEvents, wantEvents) {
			t.Errorf("events:\n got %+v\nwant %+v", gotEvents, wantEvents)
		}
		if n := len(gotEvents); n < 2 || !reflect.DeepEqual(gotEvents[n-1], presenceEvent{Users: []int64{watcher}, UserID: carol, Online: true}) {
			t.Errorf("events: got %+v, want carol's user_online to watcher last (erin has no contact)", gotEvents)
		}
		// The same cap: bob's oldest connection closed with 4002.
		gotCloses, wantCloses := closes(), refCloses()
		if len(gotCloses) != 1 || gotCloses[0].GetConnectionId() != "b-1" || gotCloses[0].GetCode() != 4002 {
			t.Errorf("closes on e1: got %v, want b-1 closed with 4002", gotCloses)
		}
		if len(gotCloses) != len(wantCloses) || (len(wantCloses) > 0 && !proto.Equal(gotCloses[0], wantCloses[0])) {
			t.Errorf("closes on e1: got %v, want %v (as Connect)", gotCloses, wantCloses)
		}
		// The same state.
		users := []int64{alice, bob, carol, erin, dave, watcher}
		for i, p := range h.presence(t, users...) {
			if w := ref.presence(t, users...)[i]; !proto.Equal(p, w) {
				t.Errorf("presence: got %v, want %v", p, w)
			}
		}
		for i, r := range h.routes(t, users...) {
			if w := ref.routes(t, users...)[i]; !proto.Equal(r, w) {
				t.Errorf("routes: got %v, want %v", r, w)
			}
		}
	})
}

// backendOf returns the backend of a URL that dbtest gave.
func backendOf(url string) sqldb.Dialect {
	backend, _, _ := strings.Cut(url, "://")
	return sqldb.Dialect(backend)
}

// TestConnectManyLimits: an empty batch answers nothing; more than 256 connections fail
// the call as a whole, naming the limit.
func TestConnectManyLimits(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		h := newHarness(t, url)
		h.register(t, "e1")
		ctx := context.Background()
		res, err := h.client.ConnectMany(ctx, connect.NewRequest(&presencev1.ConnectManyRequest{}))
		if err != nil || len(res.Msg.GetResults()) != 0 {
			t.Fatalf("empty ConnectMany: %v, %v; want no results", res, err)
		}
		many := make([]*presencev1.ConnectRequest, 257)
		for i := range many {
			many[i] = &presencev1.ConnectRequest{EdgeId: "e1", UserId: int64(i + 1), ConnectionId: "c"}
		}
		_, err = h.client.ConnectMany(ctx, connect.NewRequest(&presencev1.ConnectManyRequest{Connections: many}))
		if codeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "256") {
			t.Fatalf("ConnectMany of 257: %v, want invalid_argument naming 256", err)
		}
		// Nothing of it was recorded.
		if p := h.presence(t, 1)[0]; p.GetIsOnline() {
			t.Fatalf("after a refused ConnectMany, user 1 is %v, want offline", p)
		}
		res, err = h.client.ConnectMany(ctx, connect.NewRequest(&presencev1.ConnectManyRequest{Connections: many[:256]}))
		if err != nil {
			t.Fatalf("ConnectMany of 256: %v", err)
		}
		for i, r := range res.Msg.GetResults() {
			// Every connection has the id "c": the first is recorded, the others conflict.
			if want := i > 0; (r.GetErrorCode() == "already_exists") != want || (i == 0 && !r.GetResponse().GetBecameOnline()) {
				t.Fatalf("ConnectMany of 256, connection %d: %v", i, r)
			}
		}
	})
}
