package fanout_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/logging"
)

// routes is a fixed routing table: user → edges.
type routes map[int64][]string

func (r routes) Routes(_ context.Context, users []int64) (map[int64][]string, error) {
	out := make(map[int64][]string)
	for _, u := range users {
		if e, ok := r[u]; ok {
			out[u] = e
		}
	}
	return out, nil
}

// stream runs Serve for edge, waits for its subscribed marker and returns the events it
// sends after the marker.
func stream(t *testing.T, b bus.Bus, edge string) <-chan *chatv1.StreamEventsResponse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *chatv1.StreamEventsResponse, 16)
	done := make(chan error, 1)
	go func() {
		done <- fanout.Serve(ctx, b, logging.Discard(), "chat", edge,
			func() *chatv1.StreamEventsResponse {
				return new(chatv1.StreamEventsResponse)
			},
			func(ev *chatv1.StreamEventsResponse) error { out <- ev; return nil })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
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
	case <-time.After(10 * time.Second):
		t.Fatal("no subscribed marker")
	}
	return out
}

func TestPublishRoutesEachEdgeItsOwnUsers(t *testing.T) {
	t.Parallel()
	b := bus.NewInProcess()
	edgeA := stream(t, b, "edge-a")
	edgeB := stream(t, b, "edge-b")
	pub := fanout.NewPublisher(b, routes{1: {"edge-a"}, 2: {"edge-a", "edge-b"}, 3: {"edge-b"}}, "chat")
	event := &chatv1.StreamEventsResponse{
		ExcludeConnectionId: "conn-7",
		Event:               &chatv1.StreamEventsResponse_TypingIndicator{TypingIndicator: &chatv1.TypingIndicatorEvent{ChatId: 9, IsTyping: true}},
	}
	unrouted, err := pub.Publish(context.Background(), event, 3, 1, 2, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{4}; !slices.Equal(unrouted, want) {
		t.Errorf("unrouted = %v, want %v", unrouted, want)
	}
	if len(event.GetUserIds()) != 0 {
		t.Errorf("Publish modified its event: user_ids = %v", event.GetUserIds())
	}
	for name, tc := range map[string]struct {
		ch   <-chan *chatv1.StreamEventsResponse
		want []int64
	}{"edge-a": {edgeA, []int64{1, 2}}, "edge-b": {edgeB, []int64{2, 3}}} {
		select {
		case ev := <-tc.ch:
			if got := ev.GetUserIds(); !slices.Equal(got, tc.want) {
				t.Errorf("%s got users %v, want %v", name, got, tc.want)
			}
			if ev.GetExcludeConnectionId() != "conn-7" || ev.GetTypingIndicator().GetChatId() != 9 {
				t.Errorf("%s got %v, want the published event", name, ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s got nothing", name)
		}
	}
	select {
	case ev := <-edgeA:
		t.Errorf("edge-a got a second event %v", ev)
	default:
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
	// The stream is subscribed and busy sending its marker: overfill its queue.
	<-started
	for range fanout.StreamBuffer + 10 {
		// Publish never blocks, however slow the stream.
		_ = b.Publish(context.Background(), fanout.Subject("chat", "slow"), nil)
	}
	close(block)
	select {
	case err := <-errc:
		if !errors.Is(err, fanout.ErrStreamOverflow) || connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Fatalf("Serve returned %v, want resource_exhausted overflow", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stream that fell behind was not cut off")
	}
}

// TestNoEventLostAfterTheMarker: an event published as soon as the marker arrives
// reaches the stream; the marker is the edge's proof that the subscription is active.
func TestNoEventLostAfterTheMarker(t *testing.T) {
	t.Parallel()
	b := bus.NewInProcess()
	for i := range 20 {
		edge := "edge-" + string(rune('a'+i))
		events := stream(t, b, edge)
		pub := fanout.NewPublisher(b, routes{7: {edge}}, "chat")
		ev := &chatv1.StreamEventsResponse{Event: &chatv1.StreamEventsResponse_TypingIndicator{TypingIndicator: &chatv1.TypingIndicatorEvent{ChatId: int64(i)}}}
		if _, err := pub.Publish(context.Background(), ev, 7); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-events:
			if got.GetTypingIndicator().GetChatId() != int64(i) || !slices.Equal(got.GetUserIds(), []int64{7}) {
				t.Fatalf("%s: got %v, want chat %d for user 7", edge, got, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the event published after the marker was lost", edge)
		}
	}
}
