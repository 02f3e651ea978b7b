package server

import (
	"context"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/charla/charla/chatsvc/internal/chat"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

func TestSendRules(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 5)
		ctx := context.Background()
		c12 := e.contact(t, 1, 2)
		c13 := e.contact(t, 1, 3)
		c23 := e.contact(t, 2, 3)
		c14 := e.contact(t, 1, 4)
		if _, err := e.client.RemoveContact(ctx, connect.NewRequest(&chatv1.RemoveContactRequest{UserId: 1, OtherUserId: 4})); err != nil {
			t.Fatal(err)
		}
		long := strings.Repeat("ñ", 2001)
		for _, tc := range []struct {
			name string
			req  *chatv1.SendMessageRequest
			want connect.Code
		}{
			{"no recipient", &chatv1.SendMessageRequest{UserId: 1, Text: "hi"}, connect.CodeInvalidArgument},
			{"oneself", &chatv1.SendMessageRequest{UserId: 1, ToUserId: 1, Text: "hi"}, connect.CodeInvalidArgument},
			{"empty text", &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: " \t\n "}, connect.CodeInvalidArgument},
			{"too long", &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: long}, connect.CodeOutOfRange},
			{"too long beats unknown", &chatv1.SendMessageRequest{UserId: 1, ToUserId: 99, Text: long}, connect.CodeOutOfRange},
			{"client id too long", &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "x", ClientMessageId: strings.Repeat("a", 65)}, connect.CodeInvalidArgument},
			{"unknown user", &chatv1.SendMessageRequest{UserId: 1, ToUserId: 99, Text: "hi"}, connect.CodeNotFound},
			{"not a contact", &chatv1.SendMessageRequest{UserId: 1, ToUserId: 5, Text: "hi"}, connect.CodePermissionDenied},
			{"removed contact", &chatv1.SendMessageRequest{UserId: 1, ToUserId: 4, Text: "hi"}, connect.CodePermissionDenied},
			{"removed contact by chat", &chatv1.SendMessageRequest{UserId: 1, ChatId: c14, Text: "hi"}, connect.CodePermissionDenied},
			{"someone else's chat", &chatv1.SendMessageRequest{UserId: 1, ChatId: c23, Text: "hi"}, connect.CodeNotFound},
			{"missing chat", &chatv1.SendMessageRequest{UserId: 1, ChatId: 9999, Text: "hi"}, connect.CodeNotFound},
			{"chat and user differ", &chatv1.SendMessageRequest{UserId: 1, ChatId: c12, ToUserId: 3, Text: "hi"}, connect.CodeInvalidArgument},
			// Both given and not the same chat is an input rule: 400 before any 404 (§3, §4).
			{"missing chat beside a contact", &chatv1.SendMessageRequest{UserId: 1, ChatId: 9999, ToUserId: 2, Text: "hi"}, connect.CodeInvalidArgument},
			{"another pair's chat beside a contact", &chatv1.SendMessageRequest{UserId: 1, ChatId: c23, ToUserId: 2, Text: "hi"}, connect.CodeInvalidArgument},
			{"own chat beside a non-contact", &chatv1.SendMessageRequest{UserId: 1, ChatId: c12, ToUserId: 5, Text: "hi"}, connect.CodeInvalidArgument},
			{"own chat beside an unknown user", &chatv1.SendMessageRequest{UserId: 1, ChatId: c12, ToUserId: 99, Text: "hi"}, connect.CodeInvalidArgument},
			{"too long beats chat and user differ", &chatv1.SendMessageRequest{UserId: 1, ChatId: 9999, ToUserId: 2, Text: long}, connect.CodeOutOfRange},
			{"removed contact by chat and user", &chatv1.SendMessageRequest{UserId: 1, ChatId: c14, ToUserId: 4, Text: "hi"}, connect.CodePermissionDenied},
		} {
			_, err := e.client.SendMessage(ctx, connect.NewRequest(tc.req))
			wantCode(t, tc.name, err, tc.want)
		}

		// Valid forms; text trimmed, byte-exact otherwise.
		max := strings.Repeat("😀", 2000)
		for _, req := range []*chatv1.SendMessageRequest{
			{UserId: 1, ToUserId: 2, Text: "  hola 😀 \n"},
			{UserId: 1, ChatId: c13, Text: "by chat"},
			{UserId: 1, ChatId: c13, ToUserId: 3, Text: "both"},
			{UserId: 2, ToUserId: 1, Text: max},
		} {
			res := e.send(t, req)
			wantChat := c12
			if req.GetChatId() == c13 {
				wantChat = c13
			}
			if res.GetChatId() != wantChat || res.GetMessageId() <= 0 || res.GetStatus() != chatv1.MessageStatus_MESSAGE_STATUS_SENT_TO_SERVER || res.GetTimestamp() <= 0 {
				t.Fatalf("ack of %v: got %v, want chat %d, sent_to_server", req, res, wantChat)
			}
		}
		page, err := e.client.GetMessages(ctx, connect.NewRequest(&chatv1.GetMessagesRequest{UserId: 2, ChatId: c12}))
		if err != nil {
			t.Fatal(err)
		}
		msgs := page.Msg.GetMessages()
		if len(msgs) != 2 || msgs[0].GetText() != "hola 😀" || msgs[1].GetText() != max {
			t.Fatalf("stored texts: got %q..., want trimmed and exact", msgs[0].GetText())
		}
	})
}

func TestSendIdempotent(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 3)
		ctx := context.Background()
		c12 := e.contact(t, 1, 2)
		e.contact(t, 1, 3)
		e.online.set(2, true)
		e.drain()
		first := e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "hi", ClientMessageId: "k1"})
		if first.GetClientMessageId() != "k1" {
			t.Fatalf("ack client id: got %q, want k1", first.GetClientMessageId())
		}
		if got := len(e.drain()); got != 1 {
			t.Fatalf("events after first send: got %d, want 1", got)
		}
		e.clock.add(5000)
		// Same chat (given by id this time) and same trimmed text: the original ack.
		again := e.send(t, &chatv1.SendMessageRequest{UserId: 1, ChatId: c12, Text: " hi ", ClientMessageId: "k1"})
		if again.GetMessageId() != first.GetMessageId() || again.GetTimestamp() != first.GetTimestamp() {
			t.Fatalf("repeat ack: got %v, want %v", again, first)
		}
		if got := len(e.drain()); got != 0 {
			t.Fatalf("events after repeat: got %d, want 0", got)
		}
		_, err := e.client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "other", ClientMessageId: "k1"}))
		wantCode(t, "other text", err, connect.CodeAlreadyExists)
		_, err = e.client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{UserId: 1, ToUserId: 3, Text: "hi", ClientMessageId: "k1"}))
		wantCode(t, "other chat", err, connect.CodeAlreadyExists)
		// Keys are per sender, and byte-exact ("k1 " is another key).
		e.send(t, &chatv1.SendMessageRequest{UserId: 2, ToUserId: 1, Text: "hi", ClientMessageId: "k1"})
		e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "hi", ClientMessageId: "k1 "})
		// After the contact is removed, the repeat is still acknowledged; new sends are not.
		if _, err := e.client.RemoveContact(ctx, connect.NewRequest(&chatv1.RemoveContactRequest{UserId: 2, OtherUserId: 1})); err != nil {
			t.Fatal(err)
		}
		again = e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "hi", ClientMessageId: "k1"})
		if again.GetMessageId() != first.GetMessageId() {
			t.Fatalf("repeat after removal: got %v, want %v", again, first)
		}
		_, err = e.client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "hi", ClientMessageId: "k2"}))
		wantCode(t, "new send after removal", err, connect.CodePermissionDenied)
		var rows int
		if err := e.db.QueryRow("SELECT COUNT(*) FROM ChatMessage").Scan(&rows); err != nil || rows != 3 {
			t.Fatalf("stored rows: got %d (%v), want 3", rows, err)
		}
	})
}

func TestSendEvents(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 3)
		ctx := context.Background()
		c12 := e.contact(t, 1, 2)
		e.notifier.take()
		e.online.set(1, true)
		e.online.set(2, true)
		e.drain()
		res := e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "hola", OriginConnectionId: "conn-a", ClientMessageId: "c"})
		evs := e.drain()
		if len(evs) != 1 {
			t.Fatalf("events: got %d, want 1", len(evs))
		}
		ev := evs[0]
		m := ev.GetNewChatMessage().GetMessage()
		want := []int64{1, 2}
		if ev.GetExcludeConnectionId() != "conn-a" || len(ev.GetUserIds()) != 2 || ev.GetUserIds()[0] != want[0] || ev.GetUserIds()[1] != want[1] ||
			ev.GetNewChatMessage().GetFromUsername() != "user1" || m.GetId() != res.GetMessageId() || m.GetChatId() != c12 ||
			m.GetFromUserId() != 1 || m.GetToUserId() != 2 || m.GetText() != "hola" || m.GetTimestamp() != res.GetTimestamp() ||
			m.GetStatus() != chatv1.MessageStatus_MESSAGE_STATUS_SENT_TO_SERVER || m.GetClientMessageId() != "c" {
			t.Fatalf("NEW_CHAT_MESSAGE: got %v", ev)
		}
		if n := len(e.notifier.take()); n != 0 {
			t.Fatalf("notifications for an online recipient: got %d, want 0", n)
		}

		// Offline recipient: one new_message per chat until read.
		e.online.set(2, false)
		for i := 0; i < 3; i++ {
			e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "are you there"})
		}
		notes := e.notifier.take()
		if len(notes) != 1 {
			t.Fatalf("new_message notifications: got %d, want 1", len(notes))
		}
		p := notes[0].GetPayload().AsMap()
		if notes[0].GetType() != "new_message" || notes[0].GetUserId() != 2 || p["fromUserId"] != float64(1) || p["chatId"] != formatID(c12) {
			t.Fatalf("new_message: got %v", notes[0])
		}
		// The events still go to both: to the sender's other connections, and into the
		// offline recipient's history, which it resumes from.
		if evs := e.drain(); len(evs) != 3 || !slices.Equal(evs[0].GetUserIds(), []int64{1, 2}) {
			t.Fatalf("events with the recipient offline: got %v, want 3 to users 1 and 2", evs)
		}
		for _, user := range []int64{1, 2} {
			var texts []string
			for _, ev := range e.history(t, user) {
				texts = append(texts, ev.GetNewChatMessage().GetMessage().GetText())
			}
			if want := []string{"hola", "are you there", "are you there", "are you there"}; !slices.Equal(texts, want) {
				t.Fatalf("history of user %d: got %q, want %q", user, texts, want)
			}
		}
		if first := e.history(t, 1)[0]; first.GetExcludeConnectionId() != "conn-a" {
			t.Fatalf("sender's record of its own message: exclude %q, want conn-a", first.GetExcludeConnectionId())
		}
		if _, err := e.client.MarkRead(ctx, connect.NewRequest(&chatv1.MarkReadRequest{UserId: 2, ChatId: c12})); err != nil {
			t.Fatal(err)
		}
		e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "again"})
		if n := len(e.notifier.take()); n != 1 {
			t.Fatalf("new_message after reading: got %d, want 1", n)
		}
	})
}

// TestRetryAnnouncesWhatTheDeadAttemptDidNot: a message stored by an attempt that never
// announced it (its replica was killed between the commit and the publish, or its
// database connection dropped after the COMMIT arrived) is announced by the client's
// retry, which finds it stored; a retry of a message that was announced adds nothing.
// Either way the recipient's history holds its NEW_CHAT_MESSAGE exactly once.
func TestRetryAnnouncesWhatTheDeadAttemptDidNot(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 2)
		c12 := e.contact(t, 1, 2)
		e.online.set(2, true)
		// The dead attempt: stored, never announced.
		stored, err := e.store.InsertMessages(context.Background(), []chat.Message{{
			ChatID: c12, FromUserID: 1, ToUserID: 2, Text: "lost?", ClientMessageID: "k-dead", CreatedAt: 1,
		}})
		if err != nil {
			t.Fatal(err)
		}
		id := stored[0].Message.ID
		newMessages := func() []int64 {
			var ids []int64
			for _, ev := range e.history(t, 2) {
				if nm := ev.GetNewChatMessage(); nm != nil {
					ids = append(ids, nm.GetMessage().GetId())
				}
			}
			return ids
		}
		if got := newMessages(); len(got) != 0 {
			t.Fatalf("before the retry: recipient's history has %v, want nothing", got)
		}
		for range 2 { // the retry, then a retry of the retry
			res := e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "lost?", ClientMessageId: "k-dead"})
			if res.GetMessageId() != id {
				t.Fatalf("retry acked %d, want the stored %d", res.GetMessageId(), id)
			}
			if got := newMessages(); !slices.Equal(got, []int64{id}) {
				t.Fatalf("after the retry: recipient's NEW_CHAT_MESSAGEs %v, want [%d] once", got, id)
			}
		}
	})
}
