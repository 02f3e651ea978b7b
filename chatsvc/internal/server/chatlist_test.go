package server

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

func TestChatList(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 6)
		ctx := context.Background()
		c12 := e.contact(t, 1, 2)
		c13 := e.contact(t, 1, 3)
		c14 := e.contact(t, 1, 4)
		c15 := e.contact(t, 1, 5)
		c16 := e.contact(t, 1, 6)
		if _, err := e.client.RemoveContact(ctx, connect.NewRequest(&chatv1.RemoveContactRequest{UserId: 5, OtherUserId: 1})); err != nil {
			t.Fatal(err)
		}
		e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 4, Text: "old"})
		e.clock.add(time.Second)
		e.send(t, &chatv1.SendMessageRequest{UserId: 2, ToUserId: 1, Text: "one"})
		e.send(t, &chatv1.SendMessageRequest{UserId: 2, ToUserId: 1, Text: "two"})
		e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "mine"})
		e.clock.add(time.Second)
		_, err := e.client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{UserId: 5, ChatId: c15, Text: "gone"}))
		wantCode(t, "send to a removed contact", err, connect.CodePermissionDenied)
		e.online.set(2, true)

		res, err := e.client.GetChatList(ctx, connect.NewRequest(&chatv1.GetChatListRequest{UserId: 1}))
		if err != nil {
			t.Fatal(err)
		}
		chats := res.Msg.GetChats()
		want := []struct {
			chat, other int64
			last        string
			unread      int64
			online      bool
		}{
			{c12, 2, "mine", 2, true},
			{c14, 4, "old", 0, false},
			{c16, 6, "", 0, false},
			{c13, 3, "", 0, false},
		}
		if len(chats) != len(want) {
			t.Fatalf("chats: got %d (%v), want %d", len(chats), chats, len(want))
		}
		for i, w := range want {
			c := chats[i]
			if c.GetChatId() != w.chat || c.GetOtherUserId() != w.other || c.GetLastMessage() != w.last || c.GetUnreadCount() != w.unread ||
				c.GetIsOtherOnline() != w.online || c.GetOtherUserName() != formatName(w.other) || c.GetOtherFirstName() == "" ||
				c.GetOtherLastName() == "" || c.GetOtherPicture() == "" || (w.last == "") != (c.GetLastMessageTs() == 0) {
				t.Fatalf("chat %d: got %v, want %+v", i, c, w)
			}
		}
		if chats[0].GetLastMessageTs() <= chats[1].GetLastMessageTs() {
			t.Fatalf("order by time: got %d then %d", chats[0].GetLastMessageTs(), chats[1].GetLastMessageTs())
		}
		_, err = e.client.GetChatList(ctx, connect.NewRequest(&chatv1.GetChatListRequest{UserId: 77}))
		wantCode(t, "unknown user", err, connect.CodeNotFound)
		res, err = e.client.GetChatList(ctx, connect.NewRequest(&chatv1.GetChatListRequest{UserId: 5}))
		if err != nil || len(res.Msg.GetChats()) != 0 {
			t.Fatalf("no chats: got %v, %v; want []", res, err)
		}
	})
}

func formatName(id int64) string { return "user" + formatID(id) }

// TestChatListConstantCost proves that GET_CHAT_LIST costs the same number of queries and
// peer calls for 1 chat and for 100.
func TestChatListConstantCost(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 200)
		ctx := context.Background()
		e.contact(t, 1, 2)
		e.send(t, &chatv1.SendMessageRequest{UserId: 2, ToUserId: 1, Text: "hi"})
		for other := int64(4); other < 104; other++ {
			e.contact(t, 3, other)
			e.send(t, &chatv1.SendMessageRequest{UserId: other, ToUserId: 3, Text: "hi"})
		}
		type cost struct{ queries, profile, presence, chats int64 }
		measure := func(user int64) cost {
			t.Helper()
			q, p, pr := e.queries.Load(), e.profiles.calls.Load(), e.online.presCalls.Load()
			res, err := e.client.GetChatList(ctx, connect.NewRequest(&chatv1.GetChatListRequest{UserId: user}))
			if err != nil {
				t.Fatal(err)
			}
			return cost{e.queries.Load() - q, e.profiles.calls.Load() - p, e.online.presCalls.Load() - pr, int64(len(res.Msg.GetChats()))}
		}
		one, hundred := measure(1), measure(3)
		if one.chats != 1 || hundred.chats != 100 {
			t.Fatalf("chats: got %d and %d, want 1 and 100", one.chats, hundred.chats)
		}
		one.chats, hundred.chats = 0, 0
		if one != hundred || one != (cost{queries: 1, profile: 1, presence: 1}) {
			t.Fatalf("cost for 1 chat %+v, for 100 %+v; want both {queries:1 profile:1 presence:1}", one, hundred)
		}
	})
}
