package fanout_test

import (
	"context"
	"testing"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/fanout"
)

// BenchmarkPublishMessage publishes a NEW_CHAT_MESSAGE to its two users on the in-memory
// log, as chat does for every message (no tracing configured).
func BenchmarkPublishMessage(b *testing.B) {
	l := eventlog.NewMemory(eventlog.Options{})
	p := fanout.NewPublisher(bus.NewInProcess(), l, "chat")
	ev := &chatv1.StreamEventsResponse{ExcludeConnectionId: "c-1", Event: &chatv1.StreamEventsResponse_NewChatMessage{NewChatMessage: &chatv1.NewChatMessageEvent{
		FromUsername: "alice",
		Message:      &chatv1.ChatMessage{Id: 77, ChatId: 5, FromUserId: 1, ToUserId: 2, Text: "hola, ¿qué tal?", Timestamp: 1_700_000_000_000},
	}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Publish(ctx, ev, 2, 1); err != nil {
			b.Fatal(err)
		}
	}
}
