package server

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

func TestTyping(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 4)
		ctx := context.Background()
		c12 := e.contact(t, 1, 2)
		c23 := e.contact(t, 2, 3)
		c14 := e.contact(t, 1, 4)
		if _, err := e.client.RemoveContact(ctx, connect.NewRequest(&chatv1.RemoveContactRequest{UserId: 1, OtherUserId: 4})); err != nil {
			t.Fatal(err)
		}
		for _, u := range []int64{1, 2, 3, 4} {
			e.online.set(u, true)
		}
		e.drain()
		typing := func(user, chat int64, on bool) {
			t.Helper()
			if _, err := e.client.SetTyping(ctx, connect.NewRequest(&chatv1.SetTypingRequest{UserId: user, ChatId: chat, IsTyping: on, OriginConnectionId: "x"})); err != nil {
				t.Fatalf("SetTyping(%d, %d, %v): %v", user, chat, on, err)
			}
		}
		// expect checks the events since the last call: one TYPING_INDICATOR to user 2 only.
		expect := func(what string, want ...bool) {
			t.Helper()
			evs := e.drain()
			var got []bool
			for _, ev := range evs {
				ti := ev.GetTypingIndicator()
				wantExp := int64(0)
				if ti.GetIsTyping() {
					wantExp = 6000
				}
				if !slices.Equal(ev.GetUserIds(), []int64{2}) || ti.GetChatId() != c12 || ti.GetUserId() != 1 || ti.GetExpiresInMs() != wantExp {
					t.Fatalf("%s: event %v, want TYPING_INDICATOR of user 1 in chat %d to user 2 only", what, ev, c12)
				}
				got = append(got, ti.GetIsTyping())
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: got %v, want %v", what, got, want)
			}
		}
		typing(1, c12, true)
		expect("first ON", true)
		e.clock.add(2 * time.Second)
		typing(1, c12, true)
		expect("ON inside the window")
		e.clock.add(1500 * time.Millisecond)
		typing(1, c12, true)
		expect("ON after the window", true)
		typing(1, c12, false)
		expect("OFF", false)
		typing(1, c12, false)
		expect("second OFF")
		typing(1, c12, true)
		expect("ON right after OFF", true)
		e.send(t, &chatv1.SendMessageRequest{UserId: 1, ChatId: c12, Text: "done typing"})
		evs := e.drain()
		if len(evs) != 2 || evs[0].GetNewChatMessage() == nil || evs[1].GetTypingIndicator().GetIsTyping() {
			t.Fatalf("send while typing: got %v, want NEW_CHAT_MESSAGE then OFF", evs)
		}
		e.send(t, &chatv1.SendMessageRequest{UserId: 1, ChatId: c12, Text: "again"})
		if evs := e.drain(); len(evs) != 1 {
			t.Fatalf("send without typing: got %d events, want 1", len(evs))
		}
		typing(1, c12, true)
		e.clock.add(7 * time.Second)
		typing(1, c12, false)
		expect("ON, expiry, OFF", true)
		typing(1, c12, true)
		expect("ON", true)
		if _, err := e.client.StopTyping(ctx, connect.NewRequest(&chatv1.StopTypingRequest{UserId: 1})); err != nil {
			t.Fatal(err)
		}
		expect("StopTyping", false)
		if _, err := e.client.StopTyping(ctx, connect.NewRequest(&chatv1.StopTypingRequest{UserId: 1})); err != nil {
			t.Fatal(err)
		}
		expect("StopTyping again")

		// Removing the contact ends a relayed ON.
		typing(1, c12, true)
		expect("ON before removal", true)
		if _, err := e.client.RemoveContact(ctx, connect.NewRequest(&chatv1.RemoveContactRequest{UserId: 2, OtherUserId: 1})); err != nil {
			t.Fatal(err)
		}
		expect("removal", false)
		_, err := e.client.SetTyping(ctx, connect.NewRequest(&chatv1.SetTypingRequest{UserId: 1, ChatId: c12, IsTyping: true}))
		wantCode(t, "typing after removal", err, connect.CodePermissionDenied)

		for _, tc := range []struct {
			name string
			req  *chatv1.SetTypingRequest
			want connect.Code
		}{
			{"someone else's chat", &chatv1.SetTypingRequest{UserId: 1, ChatId: c23, IsTyping: true}, connect.CodeNotFound},
			{"missing chat", &chatv1.SetTypingRequest{UserId: 1, ChatId: 999, IsTyping: true}, connect.CodeNotFound},
			{"removed contact", &chatv1.SetTypingRequest{UserId: 1, ChatId: c14, IsTyping: true}, connect.CodePermissionDenied},
			{"no chat", &chatv1.SetTypingRequest{UserId: 1, IsTyping: true}, connect.CodeInvalidArgument},
		} {
			_, err := e.client.SetTyping(ctx, connect.NewRequest(tc.req))
			wantCode(t, tc.name, err, tc.want)
		}
		expect("errors")

		// TYPING_INDICATOR is ephemeral: no seq, never in a history (docs/protocol.md §8.2).
		var kinds []string
		for _, ev := range e.history(t, 2) {
			kinds = append(kinds, fmt.Sprintf("%T", ev.GetEvent()))
		}
		if want := []string{"*chatv1.StreamEventsResponse_NewChatMessage", "*chatv1.StreamEventsResponse_NewChatMessage"}; !slices.Equal(kinds, want) {
			t.Fatalf("history of user 2: got %v, want the two messages only", kinds)
		}
	})
}
