package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/logging"
)

// wait bounds every wait for something that must happen; it is not a speed check.
const wait = 10 * time.Second

// typingOnly makes TYPING_INDICATOR the one unsequenced event, as the chat service does.
var typingOnly = fanout.WithSequenced(func(ev proto.Message) bool {
	e, ok := ev.(*chatv1.StreamEventsResponse)
	return !ok || e.GetTypingIndicator() == nil
})

func typing(chat int64) *chatv1.StreamEventsResponse {
	return &chatv1.StreamEventsResponse{
		ExcludeConnectionId: "conn-7",
		Event:               &chatv1.StreamEventsResponse_TypingIndicator{TypingIndicator: &chatv1.TypingIndicatorEvent{ChatId: chat, IsTyping: true}},
	}
}

func status(chat int64, exclude string) *chatv1.StreamEventsResponse {
	return &chatv1.StreamEventsResponse{
		ExcludeConnectionId: exclude,
		Event: &chatv1.StreamEventsResponse_MessageStatusUpdate{MessageStatusUpdate: &chatv1.MessageStatusUpdateEvent{
			ChatId: chat, MessageIds: []int64{1, 2}, Status: chatv1.MessageStatus_MESSAGE_STATUS_READ,
		}},
	}
}

// history returns user's records in l, checking that the history is complete.
func history(t *testing.T, l eventlog.Log, user int64) []eventlog.Record {
	t.Helper()
	h, err := l.Read(context.Background(), user, 0)
	if err != nil {
		t.Fatalf("Read(%d): %v", user, err)
	}
	if !h.Complete || h.LastSeq != uint64(len(h.Records)) {
		t.Fatalf("Read(%d): complete %v, last seq %d, %d records; want a complete history", user, h.Complete, h.LastSeq, len(h.Records))
	}
	return h.Records
}

func decode(t *testing.T, r eventlog.Record) *chatv1.StreamEventsResponse {
	t.Helper()
	ev := new(chatv1.StreamEventsResponse)
	if err := proto.Unmarshal(r.Data, ev); err != nil {
		t.Fatalf("record %d of user %d: undecodable data: %v", r.Seq, r.UserID, err)
	}
	return ev
}

// stream runs Serve for edge, waits for its subscribed marker and returns the events it
// sends after the marker.
func stream(t *testing.T, b bus.Bus, edge string) <-chan *chatv1.StreamEventsResponse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *chatv1.StreamEventsResponse, 64)
	done := make(chan error, 1)
	go func() {
		done <- fanout.Serve(ctx, b, logging.Discard(), "chat", edge,
			func() *chatv1.StreamEventsResponse {
				return new(chatv1.StreamEventsResponse)
			},
			func(ev *chatv1.StreamEventsResponse) error {
				select {
				case out <- ev:
					return nil
				case <-ctx.Done(): // the test no longer reads
					return ctx.Err()
				}
			})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v, want nil after cancel", err)
		}
	})
	select {
	case ev := <-out:
		if ev.GetEvent() != nil || len(ev.GetUserIds()) != 0 || ev.GetExcludeConnectionId() != "" || len(ev.GetTraceContext()) != 0 {
			t.Fatalf("first message: got %v, want the empty subscribed marker", ev)
		}
	case err := <-done:
		t.Fatalf("Serve returned %v before its marker", err)
	case <-time.After(wait):
		t.Fatal("no subscribed marker")
	}
	return out
}

func next[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("%s: nothing arrived", what)
		panic("unreachable")
	}
}

func TestPublishAppendsOneRecordPerUser(t *testing.T) {
	t.Parallel()
	l := eventlog.NewMemory(eventlog.Options{})
	b := bus.NewInProcess()
	edge := stream(t, b, "edge-a")
	pub := fanout.NewPublisher(b, l, "chat", typingOnly)
	event := status(9, "conn-7")
	offline, err := pub.Publish(context.Background(), event, 3, 1, 2, 2)
	if err != nil || offline != nil {
		t.Fatalf("Publish: got %v, %v; want nil, nil (no online lookup)", offline, err)
	}
	if len(event.GetUserIds()) != 0 || len(event.GetTraceContext()) != 0 {
		t.Errorf("Publish modified its event: %v", event)
	}
	if _, err := pub.Publish(context.Background(), status(10, ""), 2); err != nil {
		t.Fatal(err)
	}
	var positions []uint64
	for _, user := range []int64{1, 2, 3} {
		recs := history(t, l, user)
		want := 1
		if user == 2 {
			want = 2
		}
		if len(recs) != want {
			t.Fatalf("user %d: got %d records, want %d", user, len(recs), want)
		}
		r := recs[0]
		ev := decode(t, r)
		if r.Seq != 1 || r.Service != "chat" || r.Exclude != "conn-7" || r.UserID != user ||
			ev.GetMessageStatusUpdate().GetChatId() != 9 || ev.GetExcludeConnectionId() != "conn-7" {
			t.Errorf("user %d: got record %+v with event %v, want seq 1 of the chat 9 update excluding conn-7", user, r, ev)
		}
		if len(ev.GetUserIds()) != 0 {
			t.Errorf("user %d: a sequenced event names users %v, want none (the record names its user)", user, ev.GetUserIds())
		}
		positions = append(positions, r.Position)
	}
	if !slices.IsSorted(positions) || positions[0] == positions[1] || positions[1] == positions[2] {
		t.Errorf("positions of one event's records: %v, want increasing (users in id order)", positions)
	}
	second := history(t, l, 2)[1]
	if ev := decode(t, second); second.Seq != 2 || second.Exclude != "" || ev.GetMessageStatusUpdate().GetChatId() != 10 {
		t.Errorf("user 2's second record: got %+v (%v), want seq 2 for chat 10 with no exclusion", second, ev)
	}
	// Sequenced events never go on the bus: the next thing the edge sees is a typing event.
	if _, err := pub.Publish(context.Background(), typing(1), 1); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, "edge-a", edge); ev.GetTypingIndicator().GetChatId() != 1 {
		t.Errorf("edge-a: got %v, want the typing indicator (no sequenced event on the bus)", ev)
	}
}

func TestPublishBroadcastsUnsequencedEvents(t *testing.T) {
	t.Parallel()
	l := eventlog.NewMemory(eventlog.Options{})
	b := bus.NewInProcess()
	edgeA := stream(t, b, "edge-a")
	edgeB := stream(t, b, "edge-b")
	pub := fanout.NewPublisher(b, l, "chat", typingOnly)
	event := typing(9)
	if _, err := pub.Publish(context.Background(), event, 3, 1, 2, 2); err != nil {
		t.Fatal(err)
	}
	if len(event.GetUserIds()) != 0 {
		t.Errorf("Publish modified its event: user_ids = %v", event.GetUserIds())
	}
	for name, ch := range map[string]<-chan *chatv1.StreamEventsResponse{"edge-a": edgeA, "edge-b": edgeB} {
		ev := next(t, name, ch)
		if got, want := ev.GetUserIds(), []int64{1, 2, 3}; !slices.Equal(got, want) {
			t.Errorf("%s got users %v, want %v", name, got, want)
		}
		if ev.GetExcludeConnectionId() != "conn-7" || ev.GetTypingIndicator().GetChatId() != 9 {
			t.Errorf("%s got %v, want the published event", name, ev)
		}
	}
	for _, user := range []int64{1, 2, 3} {
		if recs := history(t, l, user); len(recs) != 0 {
			t.Errorf("user %d: an unsequenced event left records %+v in the log", user, recs)
		}
	}
	// Another service's broadcast is not this one's.
	other := fanout.NewPublisher(b, l, "profile", fanout.WithSequenced(func(proto.Message) bool { return false }))
	if _, err := other.Publish(context.Background(), typing(77), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(context.Background(), typing(10), 1); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, "edge-a", edgeA); ev.GetTypingIndicator().GetChatId() != 10 {
		t.Errorf("edge-a: got %v, want chat's typing event of chat 10 (not profile's)", ev)
	}
}

func TestPublishToEdgeReachesThatEdgeOnly(t *testing.T) {
	t.Parallel()
	l := eventlog.NewMemory(eventlog.Options{})
	b := bus.NewInProcess()
	edgeA := stream(t, b, "edge-a")
	edgeB := stream(t, b, "edge-b")
	pub := fanout.NewPublisher(b, l, "chat", typingOnly)
	// Even an event that Publish would sequence goes to the edge as is.
	if err := pub.PublishToEdge(context.Background(), "edge-a", status(5, ""), 4, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(context.Background(), typing(6), 1); err != nil {
		t.Fatal(err)
	}
	ev := next(t, "edge-a", edgeA)
	if got, want := ev.GetUserIds(), []int64{4, 2}; !slices.Equal(got, want) || ev.GetMessageStatusUpdate().GetChatId() != 5 {
		t.Errorf("edge-a: got %v, want the status update of chat 5 for users %v", ev, want)
	}
	if ev := next(t, "edge-a", edgeA); ev.GetTypingIndicator().GetChatId() != 6 {
		t.Errorf("edge-a: got %v, want the broadcast typing event second", ev)
	}
	if ev := next(t, "edge-b", edgeB); ev.GetTypingIndicator().GetChatId() != 6 {
		t.Errorf("edge-b: got %v, want only the broadcast typing event", ev)
	}
	for _, user := range []int64{2, 4} {
		if recs := history(t, l, user); len(recs) != 0 {
			t.Errorf("user %d: PublishToEdge left records %+v in the log", user, recs)
		}
	}
}

// lookup is an OnlineLookup from a function.
type lookup func(ctx context.Context, users []int64) ([]int64, error)

func (f lookup) Offline(ctx context.Context, users []int64) ([]int64, error) { return f(ctx, users) }

func TestPublishReportsOfflineUsers(t *testing.T) {
	t.Parallel()
	l := eventlog.NewMemory(eventlog.Options{})
	var asked [][]int64
	down := errors.New("presence down")
	var fail atomic.Bool
	pub := fanout.NewPublisher(bus.NewInProcess(), l, "chat", fanout.WithOnline(lookup(func(_ context.Context, users []int64) ([]int64, error) {
		asked = append(asked, slices.Clone(users))
		if fail.Load() {
			return nil, down
		}
		return []int64{3}, nil
	})))
	offline, err := pub.Publish(context.Background(), status(1, ""), 3, 1, 3)
	if err != nil || !slices.Equal(offline, []int64{3}) {
		t.Fatalf("Publish: got %v, %v; want [3], nil", offline, err)
	}
	if want := [][]int64{{1, 3}}; !slices.EqualFunc(asked, want, slices.Equal) {
		t.Fatalf("lookup asked %v, want %v (each user once, sorted)", asked, want)
	}
	// The offline user's event is in its history all the same (it resumes or refetches).
	if recs := history(t, l, 3); len(recs) != 1 {
		t.Fatalf("offline user 3: %d records, want 1", len(recs))
	}

	fail.Store(true)
	offline, err = pub.Publish(context.Background(), status(2, ""), 1)
	if !errors.Is(err, down) || offline != nil {
		t.Fatalf("Publish with presence down: got %v, %v; want nil and an error wrapping %v", offline, err, down)
	}
	if recs := history(t, l, 1); len(recs) != 2 || decode(t, recs[1]).GetMessageStatusUpdate().GetChatId() != 2 {
		t.Fatalf("user 1 with presence down: got %d records, want the event appended anyway", len(recs))
	}
	if offline, err := pub.Publish(context.Background(), status(3, "")); offline != nil || err != nil || len(asked) != 2 {
		t.Fatalf("Publish to nobody: got %v, %v after %d lookups; want nothing done", offline, err, len(asked))
	}
}

// flakyLog fails its first failures appends.
type flakyLog struct {
	eventlog.Log
	failures atomic.Int64
}

func (f *flakyLog) Append(ctx context.Context, ev eventlog.Event, users []int64) ([]eventlog.Record, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, errors.New("nats: no responders")
	}
	return f.Log.Append(ctx, ev, users)
}

func TestPublishRetriesTheLog(t *testing.T) {
	t.Parallel()
	mem := eventlog.NewMemory(eventlog.Options{})
	flaky := &flakyLog{Log: mem}
	flaky.failures.Store(2)
	pub := fanout.NewPublisher(bus.NewInProcess(), flaky, "chat")
	if _, err := pub.Publish(context.Background(), status(1, ""), 1); err != nil {
		t.Fatalf("Publish while the log recovers: %v", err)
	}
	if recs := history(t, mem, 1); len(recs) != 1 || recs[0].Seq != 1 {
		t.Fatalf("after two refused appends: got %+v, want one record with seq 1", recs)
	}

	// A log that keeps failing: Publish gives up when its context ends, naming the cause.
	closed := eventlog.NewMemory(eventlog.Options{})
	closed.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fanout.NewPublisher(bus.NewInProcess(), closed, "chat").Publish(ctx, status(1, ""), 1)
	if err == nil || !strings.Contains(err.Error(), "append chat event") || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Publish to a closed log: got %v, want an append error naming the cause", err)
	}
}

// TestPublishCarriesTheTraceContext cannot run in parallel: it sets the global propagator.
func TestPublishCarriesTheTraceContext(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	l := eventlog.NewMemory(eventlog.Options{})
	b := bus.NewInProcess()
	edge := stream(t, b, "edge-a")
	pub := fanout.NewPublisher(b, l, "chat", typingOnly)
	if _, err := pub.Publish(ctx, status(1, ""), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, typing(1), 1); err != nil {
		t.Fatal(err)
	}
	want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
	if got := decode(t, history(t, l, 1)[0]).GetTraceContext()["traceparent"]; got != want {
		t.Errorf("sequenced event traceparent: got %q, want %q", got, want)
	}
	if got := next(t, "edge-a", edge).GetTraceContext()["traceparent"]; got != want {
		t.Errorf("broadcast event traceparent: got %q, want %q", got, want)
	}
}

func TestServeRejectsBadEdgeID(t *testing.T) {
	t.Parallel()
	err := fanout.Serve(context.Background(), bus.NewInProcess(), logging.Discard(), "chat", "bad edge!",
		func() *chatv1.StreamEventsResponse { return nil },
		func(*chatv1.StreamEventsResponse) error { return nil })
	if got := connect.CodeOf(err); got != connect.CodeInvalidArgument {
		t.Fatalf("code = %v, want invalid_argument", got)
	}
}

func TestServeCutsOffAStreamThatFallsBehind(t *testing.T) {
	t.Parallel()
	b := bus.NewInProcess()
	started := make(chan struct{}, 1) // the first send: the marker
	block := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- fanout.Serve(context.Background(), b, logging.Discard(), "chat", "slow",
			func() *chatv1.StreamEventsResponse { return new(chatv1.StreamEventsResponse) },
			func(*chatv1.StreamEventsResponse) error {
				select {
				case started <- struct{}{}:
				default:
				}
				<-block
				return nil
			})
	}()
	// The stream is subscribed and busy sending its marker: overfill its queue, through
	// both of its subjects.
	<-started
	for i := range fanout.StreamBuffer + 10 {
		subject := fanout.Subject("chat", "slow")
		if i%2 == 1 {
			subject = fanout.BroadcastSubject("chat")
		}
		// Publish never blocks, however slow the stream.
		_ = b.Publish(context.Background(), subject, nil)
	}
	close(block)
	select {
	case err := <-errc:
		if !errors.Is(err, fanout.ErrStreamOverflow) || connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Fatalf("Serve returned %v, want resource_exhausted overflow", err)
		}
	case <-time.After(wait):
		t.Fatal("a stream that fell behind was not cut off")
	}
}

// TestNoEventLostAfterTheMarker: events published as soon as the marker arrives, on
// either subject, reach the stream; the marker is the edge's proof that both subscriptions
// are active.
func TestNoEventLostAfterTheMarker(t *testing.T) {
	t.Parallel()
	b := bus.NewInProcess()
	pub := fanout.NewPublisher(b, eventlog.NewMemory(eventlog.Options{}), "chat", typingOnly)
	for i := range 20 {
		edge := "edge-" + string(rune('a'+i))
		events := stream(t, b, edge)
		if err := pub.PublishToEdge(context.Background(), edge, typing(int64(i)), 7); err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(context.Background(), typing(int64(100+i)), 8); err != nil {
			t.Fatal(err)
		}
		got := next(t, edge, events)
		if got.GetTypingIndicator().GetChatId() != int64(i) || !slices.Equal(got.GetUserIds(), []int64{7}) {
			t.Fatalf("%s: got %v, want chat %d for user 7", edge, got, i)
		}
		got = next(t, edge, events)
		if got.GetTypingIndicator().GetChatId() != int64(100+i) || !slices.Equal(got.GetUserIds(), []int64{8}) {
			t.Fatalf("%s: got %v, want the broadcast of chat %d for user 8", edge, got, 100+i)
		}
	}
}

// serveLog runs ServeLog for an edge from after and returns what it sends, the marker
// first. The stream ends with the test; ServeLog must then return nil.
func serveLog(t *testing.T, l eventlog.Log, after *uint64) <-chan *presencev1.StreamUserEventsResponse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *presencev1.StreamUserEventsResponse, 16)
	done := make(chan error, 1)
	go func() {
		done <- fanout.ServeLog(ctx, l, logging.Discard(), "edge-a", after,
			func(m *presencev1.StreamUserEventsResponse) error {
				select {
				case out <- m:
					return nil
				case <-ctx.Done(): // the test no longer reads
					return ctx.Err()
				}
			})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeLog returned %v, want nil after cancel", err)
		}
	})
	return out
}

// marker receives the first message of a ServeLog stream and checks it is the marker.
func marker(t *testing.T, msgs <-chan *presencev1.StreamUserEventsResponse, startedAfter uint64) {
	t.Helper()
	m := next(t, "marker", msgs)
	if m.GetStartedAfter() != startedAfter || len(m.GetEvents()) != 0 {
		t.Fatalf("first message: got %v, want only started_after %d", m, startedAfter)
	}
}

func appendN(t *testing.T, l eventlog.Log, ev eventlog.Event, users ...int64) []eventlog.Record {
	t.Helper()
	recs, err := l.Append(context.Background(), ev, users)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return recs
}

func TestServeLogFromNow(t *testing.T) {
	t.Parallel()
	l := eventlog.NewMemory(eventlog.Options{})
	appendN(t, l, eventlog.Event{Service: "chat", Data: []byte("old")}, 1, 2, 3)
	msgs := serveLog(t, l, nil)
	// Only records appended after the marker follow it, with every field of the record.
	marker(t, msgs, 3)
	want := appendN(t, l, eventlog.Event{Service: "notify", Exclude: "conn-1", Data: []byte("new")}, 2)[0]
	m := next(t, "events", msgs)
	if len(m.GetEvents()) != 1 || m.GetStartedAfter() != 0 {
		t.Fatalf("after the marker: got %v, want one event", m)
	}
	got := m.GetEvents()[0]
	if got.GetPosition() != 4 || got.GetUserId() != 2 || got.GetSeq() != 2 || got.GetService() != "notify" ||
		got.GetExcludeConnectionId() != "conn-1" || got.GetTimeMs() != want.TimeMs || string(got.GetEvent()) != "new" {
		t.Fatalf("event: got %v, want the record %+v", got, want)
	}
}

func TestServeLogResumesInBatches(t *testing.T) {
	t.Parallel()
	l := eventlog.NewMemory(eventlog.Options{})
	const n = 600
	users := make([]int64, n)
	for i := range users {
		users[i] = int64(i + 1)
	}
	appendN(t, l, eventlog.Event{Service: "presence", Data: []byte("p")}, users...)
	after := uint64(100)
	msgs := serveLog(t, l, &after)
	marker(t, msgs, 100)
	var got []*presencev1.UserEvent
	batches := 0
	for len(got) < n-100 {
		m := next(t, "replay", msgs)
		if m.GetStartedAfter() != 0 || len(m.GetEvents()) == 0 {
			t.Fatalf("replay message %d: got started_after %d and %d events, want events only", batches, m.GetStartedAfter(), len(m.GetEvents()))
		}
		got = append(got, m.GetEvents()...)
		batches++
	}
	// Live records follow the replay without a gap.
	appendN(t, l, eventlog.Event{Service: "chat", Data: []byte("live")}, 7)
	got = append(got, next(t, "live", msgs).GetEvents()...)
	if len(got) != n-100+1 {
		t.Fatalf("got %d events, want %d", len(got), n-100+1)
	}
	for i, ev := range got {
		pos := uint64(101 + i)
		wantUser, wantSeq := int64(pos), uint64(1)
		if pos == n+1 {
			wantUser, wantSeq = 7, 2
		}
		if ev.GetPosition() != pos || ev.GetUserId() != wantUser || ev.GetSeq() != wantSeq {
			t.Fatalf("event %d: got position %d user %d seq %d, want position %d user %d seq %d",
				i, ev.GetPosition(), ev.GetUserId(), ev.GetSeq(), pos, wantUser, wantSeq)
		}
	}
	if batches >= n-100 {
		t.Errorf("replayed %d records in %d messages, want them batched", n-100, batches)
	}
}

func TestServeLogTooOld(t *testing.T) {
	t.Parallel()
	l := eventlog.NewMemory(eventlog.Options{})
	// Fill the log until its first record is gone (256 users an append, to be quick).
	users := make([]int64, 256)
	for i := range users {
		users[i] = int64(i + 1)
	}
	for range eventlog.MemoryRingSize / len(users) {
		appendN(t, l, eventlog.Event{Service: "chat"}, users...)
	}
	appendN(t, l, eventlog.Event{Service: "chat"}, 1)
	for _, after := range []uint64{0, eventlog.MemoryRingSize + 2} { // gone; not yet written
		sent := 0
		err := fanout.ServeLog(context.Background(), l, logging.Discard(), "edge-a", &after,
			func(*presencev1.StreamUserEventsResponse) error { sent++; return nil })
		if connect.CodeOf(err) != connect.CodeOutOfRange || !errors.Is(err, eventlog.ErrTooOld) || sent != 0 {
			t.Errorf("ServeLog after %d: got %v after %d messages, want out_of_range and nothing sent", after, err, sent)
		}
	}
	// The oldest position still held works (the test reads only the marker of the replay).
	after := uint64(1)
	msgs := serveLog(t, l, &after)
	marker(t, msgs, 1)
	if first := next(t, "replay", msgs).GetEvents()[0]; first.GetPosition() != 2 {
		t.Fatalf("replay after 1 starts at position %d, want 2", first.GetPosition())
	}
}

// tailFunc is an eventlog.Log whose Tail is a function; its other methods are not used.
type tailFunc func(ctx context.Context, after *uint64, started func(uint64), h func([]eventlog.Record) error) error

func (f tailFunc) Append(context.Context, eventlog.Event, []int64) ([]eventlog.Record, error) {
	return nil, errors.New("not used")
}

func (f tailFunc) Tail(ctx context.Context, after *uint64, started func(uint64), h func([]eventlog.Record) error) error {
	return f(ctx, after, started, h)
}

func (f tailFunc) Read(context.Context, int64, uint64) (eventlog.History, error) {
	return eventlog.History{}, errors.New("not used")
}

func (f tailFunc) LastSeq(context.Context, int64) (uint64, error) { return 0, nil }

func (f tailFunc) Close() error { return nil }

func TestServeLogErrors(t *testing.T) {
	t.Parallel()
	broken := errors.New("nats: connection closed")
	sendFailed := errors.New("stream closed")
	fails := func(err error) tailFunc {
		return func(_ context.Context, _ *uint64, started func(uint64), _ func([]eventlog.Record) error) error {
			started(5)
			return err
		}
	}
	tests := []struct {
		name string
		edge string
		log  eventlog.Log
		send error
		code connect.Code
		is   error
	}{
		{"bad edge id", "bad edge!", eventlog.NewMemory(eventlog.Options{}), nil, connect.CodeInvalidArgument, nil},
		{"fell behind", "e", fails(fmt.Errorf("tail: %w", eventlog.ErrFellBehind)), nil, connect.CodeResourceExhausted, eventlog.ErrFellBehind},
		{"too old", "e", fails(eventlog.ErrTooOld), nil, connect.CodeOutOfRange, eventlog.ErrTooOld},
		{"log down", "e", fails(broken), nil, connect.CodeUnavailable, broken},
		{"send fails", "e", tailFunc(func(_ context.Context, _ *uint64, started func(uint64), h func([]eventlog.Record) error) error {
			started(5)
			return h([]eventlog.Record{{Position: 6, UserID: 1, Seq: 1}})
		}), sendFailed, connect.CodeUnavailable, sendFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := fanout.ServeLog(context.Background(), tt.log, logging.Discard(), tt.edge, nil,
				func(*presencev1.StreamUserEventsResponse) error { return tt.send })
			if connect.CodeOf(err) != tt.code || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("got %v (%v), want %v wrapping %v", connect.CodeOf(err), err, tt.code, tt.is)
			}
		})
	}
}

// switchLog refuses every append while down is set, as a JetStream log does while NATS
// is away.
type switchLog struct {
	eventlog.Log
	down atomic.Bool
}

func (s *switchLog) Append(ctx context.Context, ev eventlog.Event, users []int64) ([]eventlog.Record, error) {
	if s.down.Load() {
		return nil, errors.New("nats: connection closed")
	}
	return s.Log.Append(ctx, ev, users)
}

func TestPublishKeepsEventsWhileTheLogIsAway(t *testing.T) {
	t.Parallel()
	mem := eventlog.NewMemory(eventlog.Options{})
	log := &switchLog{Log: mem}
	log.down.Store(true)
	pub := fanout.NewPublisher(bus.NewInProcess(), log, "chat")
	for chat := int64(1); chat <= 3; chat++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		_, err := pub.Publish(ctx, status(chat, ""), 7)
		cancel()
		if !errors.Is(err, fanout.ErrKept) || !strings.Contains(err.Error(), "connection closed") {
			t.Fatalf("Publish %d with the log away: got %v, want ErrKept naming the cause", chat, err)
		}
	}
	if n := pub.Backlog(); n != 3 {
		t.Fatalf("kept: got %d events, want 3", n)
	}
	if recs := history(t, mem, 7); len(recs) != 0 {
		t.Fatalf("history while the log is away: got %d records, want none", len(recs))
	}

	log.down.Store(false)
	deadline := time.Now().Add(30 * time.Second)
	for pub.Backlog() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	recs := history(t, mem, 7)
	if len(recs) != 3 {
		t.Fatalf("history once the log is back: got %d records, want the 3 kept events", len(recs))
	}
	for i, r := range recs {
		if got := decode(t, r).GetMessageStatusUpdate().GetChatId(); got != int64(i+1) || r.Seq != uint64(i+1) {
			t.Fatalf("record %d: chat %d seq %d, want chat %d seq %d (the order kept)", i, got, r.Seq, i+1, i+1)
		}
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("Close with nothing left: %v", err)
	}

	// After Close nothing more is kept: the error says so and the backlog stays empty.
	log.down.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := pub.Publish(ctx, status(4, ""), 7); err == nil || errors.Is(err, fanout.ErrKept) || pub.Backlog() != 0 {
		t.Fatalf("Publish after Close: got %v with %d kept, want an error and nothing kept", err, pub.Backlog())
	}
}
