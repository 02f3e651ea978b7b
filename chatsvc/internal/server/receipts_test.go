package server

import (
	"context"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

func TestMarkRead(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 3)
		ctx := context.Background()
		c12 := e.contact(t, 1, 2)
		c13 := e.contact(t, 1, 3)
		var ids []int64
		for i := 0; i < 4; i++ {
			ids = append(ids, e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "m"}).GetMessageId())
		}
		mine := e.send(t, &chatv1.SendMessageRequest{UserId: 2, ToUserId: 1, Text: "reply"}).GetMessageId()
		e.online.set(1, true)
		e.online.set(2, true)
		e.drain()

		read := func(user, chat, upTo int64) int64 {
			t.Helper()
			res, err := e.client.MarkRead(ctx, connect.NewRequest(&chatv1.MarkReadRequest{UserId: user, ChatId: chat, UpToMessageId: upTo, OriginConnectionId: "tab-1"}))
			if err != nil {
				t.Fatalf("MarkRead(%d, %d, %d): %v", user, chat, upTo, err)
			}
			if res.Msg.GetChatId() != chat {
				t.Fatalf("MarkRead chat: got %d, want %d", res.Msg.GetChatId(), chat)
			}
			return res.Msg.GetUpdated()
		}
		if got := read(2, c12, ids[1]); got != 2 {
			t.Fatalf("read up to the 2nd: got %d, want 2", got)
		}
		evs := e.drain()
		if len(evs) != 1 {
			t.Fatalf("events: got %d, want 1", len(evs))
		}
		su := evs[0].GetMessageStatusUpdate()
		if !slices.Equal(evs[0].GetUserIds(), []int64{1, 2}) || evs[0].GetExcludeConnectionId() != "tab-1" ||
			su.GetChatId() != c12 || !slices.Equal(su.GetMessageIds(), ids[:2]) || su.GetStatus() != chatv1.MessageStatus_MESSAGE_STATUS_READ {
			t.Fatalf("MESSAGE_STATUS_UPDATE: got %v", evs[0])
		}
		if got := read(2, c12, ids[1]); got != 0 {
			t.Fatalf("repeat: got %d, want 0", got)
		}
		if evs := e.drain(); len(evs) != 0 {
			t.Fatalf("events on a repeat: got %d, want 0", len(evs))
		}
		// A bound that does not exist; 0 marks the rest; the caller's own message is untouched.
		if got := read(2, c12, mine+1000); got != 2 {
			t.Fatalf("read with a high bound: got %d, want 2", got)
		}
		if got := read(2, c12, 0); got != 0 {
			t.Fatalf("read all again: got %d, want 0", got)
		}
		if got := read(1, c12, 0); got != 1 {
			t.Fatalf("user 1 reads the reply: got %d, want 1", got)
		}
		for _, tc := range []struct {
			name string
			req  *chatv1.MarkReadRequest
			want connect.Code
		}{
			{"someone else's chat", &chatv1.MarkReadRequest{UserId: 2, ChatId: c13}, connect.CodeNotFound},
			{"missing chat", &chatv1.MarkReadRequest{UserId: 2, ChatId: 12345}, connect.CodeNotFound},
			{"no chat", &chatv1.MarkReadRequest{UserId: 2}, connect.CodeInvalidArgument},
			{"negative bound", &chatv1.MarkReadRequest{UserId: 2, ChatId: c12, UpToMessageId: -1}, connect.CodeInvalidArgument},
		} {
			_, err := e.client.MarkRead(ctx, connect.NewRequest(tc.req))
			wantCode(t, tc.name, err, tc.want)
		}

		// Removed contacts: history readable and markable.
		e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "last"})
		if _, err := e.client.RemoveContact(ctx, connect.NewRequest(&chatv1.RemoveContactRequest{UserId: 1, OtherUserId: 2})); err != nil {
			t.Fatal(err)
		}
		if got := read(2, c12, 0); got != 1 {
			t.Fatalf("read after removal: got %d, want 1", got)
		}
		page, err := e.client.GetMessages(ctx, connect.NewRequest(&chatv1.GetMessagesRequest{UserId: 2, ChatId: c12}))
		if err != nil || len(page.Msg.GetMessages()) != 6 {
			t.Fatalf("history after removal: got %v, %v; want 6 messages", page, err)
		}
	})
}

// TestDelivered: MarkDelivered and history fetches move sent messages to delivered, tell
// the sender, and never move a read message back.
func TestDelivered(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 3)
		ctx := context.Background()
		c12 := e.contact(t, 1, 2)
		e.contact(t, 1, 3)
		var ids []int64
		for i := 0; i < 4; i++ {
			ids = append(ids, e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "m"}).GetMessageId())
		}
		other := e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 3, Text: "to 3"}).GetMessageId()
		e.online.set(1, true)
		e.drain()
		if _, err := e.client.MarkRead(ctx, connect.NewRequest(&chatv1.MarkReadRequest{UserId: 2, ChatId: c12, UpToMessageId: ids[0]})); err != nil {
			t.Fatal(err)
		}
		e.drain()
		// ids[0] is read, `other` is not addressed to 2: only ids[1] changes.
		res, err := e.client.MarkDelivered(ctx, connect.NewRequest(&chatv1.MarkDeliveredRequest{UserId: 2, MessageIds: []int64{ids[0], ids[1], ids[1], other}}))
		if err != nil || res.Msg.GetUpdated() != 1 {
			t.Fatalf("MarkDelivered: got %v, %v; want 1", res, err)
		}
		evs := e.drain()
		if len(evs) != 1 || !slices.Equal(evs[0].GetUserIds(), []int64{1}) || evs[0].GetExcludeConnectionId() != "" ||
			!slices.Equal(evs[0].GetMessageStatusUpdate().GetMessageIds(), []int64{ids[1]}) ||
			evs[0].GetMessageStatusUpdate().GetStatus() != chatv1.MessageStatus_MESSAGE_STATUS_DELIVERED {
			t.Fatalf("delivered event: got %v", evs)
		}
		res, err = e.client.MarkDelivered(ctx, connect.NewRequest(&chatv1.MarkDeliveredRequest{UserId: 2, MessageIds: []int64{ids[1]}}))
		if err != nil || res.Msg.GetUpdated() != 0 {
			t.Fatalf("MarkDelivered repeat: got %v, %v; want 0", res, err)
		}
		_, err = e.client.MarkDelivered(ctx, connect.NewRequest(&chatv1.MarkDeliveredRequest{UserId: 2, MessageIds: []int64{0}}))
		wantCode(t, "zero id", err, connect.CodeInvalidArgument)

		// Fetching history delivers the rest; the sender's fetch delivers nothing.
		e.drain()
		if _, err := e.client.GetMessages(ctx, connect.NewRequest(&chatv1.GetMessagesRequest{UserId: 1, ChatId: c12})); err != nil {
			t.Fatal(err)
		}
		if evs := e.drain(); len(evs) != 0 {
			t.Fatalf("events from the sender's fetch: got %v", evs)
		}
		page, err := e.client.GetMessages(ctx, connect.NewRequest(&chatv1.GetMessagesRequest{UserId: 2, ChatId: c12}))
		if err != nil {
			t.Fatal(err)
		}
		var statuses []chatv1.MessageStatus
		for _, m := range page.Msg.GetMessages() {
			statuses = append(statuses, m.GetStatus())
		}
		R, D := chatv1.MessageStatus_MESSAGE_STATUS_READ, chatv1.MessageStatus_MESSAGE_STATUS_DELIVERED
		if !slices.Equal(statuses, []chatv1.MessageStatus{R, D, D, D}) {
			t.Fatalf("statuses after fetch: got %v, want [read delivered delivered delivered]", statuses)
		}
		evs = e.drain()
		if len(evs) != 1 || !slices.Equal(evs[0].GetMessageStatusUpdate().GetMessageIds(), ids[2:]) {
			t.Fatalf("delivered event from fetch: got %v, want ids %v", evs, ids[2:])
		}
	})
}

// TestDeliveredManyReceipts: one MarkDelivered call with receipts of several recipients
// (as the edge sends them) changes each recipient's own messages only, announces one
// status update per chat and sender, and rejects a bad receipt by naming it.
func TestDeliveredManyReceipts(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 4)
		ctx := context.Background()
		e.contact(t, 1, 2)
		e.contact(t, 1, 3)
		e.contact(t, 4, 3)
		to2a := e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "a"}).GetMessageId()
		to2b := e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "b"}).GetMessageId()
		to3 := e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 3, Text: "c"}).GetMessageId()
		from4 := e.send(t, &chatv1.SendMessageRequest{UserId: 4, ToUserId: 3, Text: "d"}).GetMessageId()
		e.online.set(1, true)
		e.online.set(4, true)
		e.drain()

		// to3 listed under user 2 is not 2's: ignored there, delivered under 3.
		res, err := e.client.MarkDelivered(ctx, connect.NewRequest(&chatv1.MarkDeliveredRequest{Receipts: []*chatv1.DeliveryReceipt{
			{UserId: 2, MessageIds: []int64{to2b, to2a, to3}},
			{UserId: 3, MessageIds: []int64{to3, from4, from4}},
		}}))
		if err != nil || res.Msg.GetUpdated() != 4 {
			t.Fatalf("MarkDelivered: got %v, %v; want 4 updated", res, err)
		}
		got := map[int64][]int64{} // sender → ids announced delivered
		for _, ev := range e.drain() {
			su := ev.GetMessageStatusUpdate()
			if su == nil || su.GetStatus() != chatv1.MessageStatus_MESSAGE_STATUS_DELIVERED || len(ev.GetUserIds()) != 1 {
				t.Fatalf("unexpected event %v", ev)
			}
			got[ev.GetUserIds()[0]] = append(got[ev.GetUserIds()[0]], su.GetMessageIds()...)
		}
		for sender, ids := range got {
			slices.Sort(ids)
			got[sender] = ids
		}
		if want := []int64{to2a, to2b, to3}; !slices.Equal(got[1], want) || !slices.Equal(got[4], []int64{from4}) || len(got) != 2 {
			t.Fatalf("announced: got %v, want 1: %v and 4: [%d]", got, want, from4)
		}

		_, err = e.client.MarkDelivered(ctx, connect.NewRequest(&chatv1.MarkDeliveredRequest{Receipts: []*chatv1.DeliveryReceipt{
			{UserId: 2, MessageIds: []int64{to2a}}, {UserId: 0, MessageIds: []int64{to3}},
		}}))
		wantCode(t, "receipt without user", err, connect.CodeInvalidArgument)
		if err != nil && !strings.Contains(err.Error(), "receipts[1].userId") {
			t.Errorf("error %q does not name receipts[1].userId", err)
		}
		many := make([]*chatv1.DeliveryReceipt, 6)
		for i := range many {
			ids := make([]int64, 1000)
			for k := range ids {
				ids[k] = int64(k + 1)
			}
			many[i] = &chatv1.DeliveryReceipt{UserId: 2, MessageIds: ids}
		}
		_, err = e.client.MarkDelivered(ctx, connect.NewRequest(&chatv1.MarkDeliveredRequest{Receipts: many}))
		wantCode(t, "6,000 ids", err, connect.CodeInvalidArgument)
		_, err = e.client.MarkDelivered(ctx, connect.NewRequest(&chatv1.MarkDeliveredRequest{}))
		wantCode(t, "empty request", err, connect.CodeInvalidArgument)
	})
}

func TestGetMessages(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 3)
		ctx := context.Background()
		c12 := e.contact(t, 1, 2)
		c23 := e.contact(t, 2, 3)
		var ids []int64
		for i := 0; i < 7; i++ {
			ids = append(ids, e.send(t, &chatv1.SendMessageRequest{UserId: 1 + int64(i%2), ChatId: c12, Text: "m"}).GetMessageId())
			e.send(t, &chatv1.SendMessageRequest{UserId: 2, ChatId: c23, Text: "noise"})
		}
		page := func(req *chatv1.GetMessagesRequest) ([]int64, bool) {
			t.Helper()
			req.UserId, req.ChatId = 1, c12
			res, err := e.client.GetMessages(ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatalf("GetMessages(%v): %v", req, err)
			}
			var got []int64
			for _, m := range res.Msg.GetMessages() {
				got = append(got, m.GetId())
			}
			return got, res.Msg.GetHasMore()
		}
		for _, tc := range []struct {
			name    string
			req     *chatv1.GetMessagesRequest
			want    []int64
			hasMore bool
		}{
			{"newest", &chatv1.GetMessagesRequest{Limit: 3}, ids[4:], true},
			{"default limit", &chatv1.GetMessagesRequest{}, ids, false},
			{"exact fit", &chatv1.GetMessagesRequest{Limit: 7}, ids, false},
			{"before", &chatv1.GetMessagesRequest{BeforeId: ids[4], Limit: 3}, ids[1:4], true},
			{"before, last page", &chatv1.GetMessagesRequest{BeforeId: ids[3], Limit: 3}, ids[:3], false},
			{"after", &chatv1.GetMessagesRequest{AfterId: ids[1], Limit: 3}, ids[2:5], true},
			{"after, last page", &chatv1.GetMessagesRequest{AfterId: ids[3], Limit: 3}, ids[4:], false},
			{"after a missing id", &chatv1.GetMessagesRequest{AfterId: ids[6] + 100}, nil, false},
			{"before the first", &chatv1.GetMessagesRequest{BeforeId: ids[0]}, nil, false},
		} {
			got, hasMore := page(tc.req)
			if !slices.Equal(got, tc.want) || hasMore != tc.hasMore {
				t.Fatalf("%s: got %v hasMore=%v, want %v hasMore=%v", tc.name, got, hasMore, tc.want, tc.hasMore)
			}
		}
		for _, tc := range []struct {
			name string
			req  *chatv1.GetMessagesRequest
			want connect.Code
		}{
			{"both cursors", &chatv1.GetMessagesRequest{UserId: 1, ChatId: c12, BeforeId: 5, AfterId: 1}, connect.CodeInvalidArgument},
			{"limit 201", &chatv1.GetMessagesRequest{UserId: 1, ChatId: c12, Limit: 201}, connect.CodeInvalidArgument},
			{"limit -1", &chatv1.GetMessagesRequest{UserId: 1, ChatId: c12, Limit: -1}, connect.CodeInvalidArgument},
			{"someone else's chat", &chatv1.GetMessagesRequest{UserId: 1, ChatId: c23}, connect.CodeNotFound},
			{"bad limit beats someone else's chat", &chatv1.GetMessagesRequest{UserId: 1, ChatId: c23, Limit: 500}, connect.CodeInvalidArgument},
		} {
			_, err := e.client.GetMessages(ctx, connect.NewRequest(tc.req))
			wantCode(t, tc.name, err, tc.want)
		}
	})
}
