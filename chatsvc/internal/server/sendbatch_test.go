package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/chatsvc/internal/chat"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/rpc/rpctest"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
	"github.com/charla/charla/shared/svc"
)

// TestSendMessagesAnswersEachAsSendMessage sends valid and invalid messages in one call:
// each is answered in its position as SendMessage answers it alone, and only the valid
// ones are stored and announced.
func TestSendMessagesAnswersEachAsSendMessage(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 5)
		ctx := context.Background()
		c12 := e.contact(t, 1, 2)
		c13 := e.contact(t, 1, 3)
		first := e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "first", ClientMessageId: "k1"})
		e.drain()

		type item struct {
			req  *chatv1.SendMessageRequest
			want connect.Code // 0: stored
		}
		items := []item{
			{&chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "a"}, 0},
			{&chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: " \t "}, connect.CodeInvalidArgument},
			{&chatv1.SendMessageRequest{UserId: 1, ChatId: c13, Text: "b"}, 0},
			{&chatv1.SendMessageRequest{UserId: 1, ToUserId: 5, Text: "not a contact"}, connect.CodePermissionDenied},
			{&chatv1.SendMessageRequest{UserId: 1, ToUserId: 99, Text: "unknown"}, connect.CodeNotFound},
			{&chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: strings.Repeat("x", 2001)}, connect.CodeOutOfRange},
			{&chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "first", ClientMessageId: "k1"}, 0}, // a repeat
			{&chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "other", ClientMessageId: "k1"}, connect.CodeAlreadyExists},
			{&chatv1.SendMessageRequest{UserId: 2, ToUserId: 1, Text: "c", ClientMessageId: "k2"}, 0},
		}
		// The same answers from SendMessage, for the codes: a new database state would
		// differ for the stored ones, so only the refused ones are asked alone.
		for i, it := range items {
			if it.want == 0 {
				continue
			}
			_, err := e.client.SendMessage(ctx, connect.NewRequest(it.req))
			wantCode(t, fmt.Sprintf("SendMessage of item %d alone", i), err, it.want)
		}
		req := &chatv1.SendMessagesRequest{}
		for _, it := range items {
			req.Messages = append(req.Messages, it.req)
		}
		res, err := e.client.SendMessages(ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatalf("SendMessages: %v", err)
		}
		results := res.Msg.GetResults()
		if len(results) != len(items) {
			t.Fatalf("SendMessages: %d results for %d messages", len(results), len(items))
		}
		stored := map[int64]string{}
		for i, it := range items {
			r := results[i]
			if it.want != 0 {
				if r.GetError() == nil || connect.Code(r.GetError().GetCode()) != it.want || r.GetError().GetMessage() == "" {
					t.Fatalf("item %d (%v): got %v, want error %v with a message", i, it.req, r, it.want)
				}
				continue
			}
			sent := r.GetSent()
			if sent == nil || sent.GetMessageId() <= 0 || sent.GetStatus() != chatv1.MessageStatus_MESSAGE_STATUS_SENT_TO_SERVER {
				t.Fatalf("item %d (%v): got %v, want an acknowledgement", i, it.req, r)
			}
			stored[sent.GetMessageId()] = strings.TrimSpace(it.req.GetText())
		}
		if got := results[6].GetSent().GetMessageId(); got != first.GetMessageId() {
			t.Fatalf("the repeat of k1: got message %d, want the original %d", got, first.GetMessageId())
		}
		if got := results[2].GetSent().GetChatId(); got != c13 {
			t.Fatalf("the message by chat: got chat %d, want %d", got, c13)
		}

		// Stored once each, in the right chats, and announced to both users.
		for _, c := range []int64{c12, c13} {
			page, err := e.client.GetMessages(ctx, connect.NewRequest(&chatv1.GetMessagesRequest{UserId: 1, ChatId: c}))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page.Msg.GetMessages() {
				if text, ok := stored[m.GetId()]; ok && text != m.GetText() {
					t.Fatalf("message %d: stored %q, want %q", m.GetId(), m.GetText(), text)
				}
				delete(stored, m.GetId())
			}
		}
		if len(stored) != 0 {
			t.Fatalf("acknowledged but not in history: %v", stored)
		}
		announced := map[int64]int{}
		for _, ev := range e.history(t, 1) {
			if m := ev.GetNewChatMessage().GetMessage(); m != nil {
				announced[m.GetId()]++
			}
		}
		for i, it := range items {
			if it.want == 0 {
				if id := results[i].GetSent().GetMessageId(); announced[id] != 1 {
					t.Fatalf("item %d, message %d: in user 1's history %d times, want once", i, id, announced[id])
				}
			}
		}

		// The call's own bounds.
		_, err = e.client.SendMessages(ctx, connect.NewRequest(&chatv1.SendMessagesRequest{}))
		wantCode(t, "SendMessages of nothing", err, connect.CodeInvalidArgument)
		tooMany := &chatv1.SendMessagesRequest{}
		for range chat.MaxSendBatch + 1 {
			tooMany.Messages = append(tooMany.Messages, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "x"})
		}
		_, err = e.client.SendMessages(ctx, connect.NewRequest(tooMany))
		wantCode(t, "SendMessages of too many", err, connect.CodeInvalidArgument)
	})
}

// TestSendMessagesWithProfileDown: the profile service unreachable fails only the messages
// of a call whose users' names are not cached; the others are stored as they would be alone.
func TestSendMessagesWithProfileDown(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 5)
		ctx := context.Background()
		e.contact(t, 1, 2) // caches the names of 1 and 2
		// A contact stored directly: the service has never asked for the names of 4 and 5.
		if _, _, err := e.store.AcceptContact(ctx, 4, 5, 0); err != nil {
			t.Fatal(err)
		}
		e.profiles.down.Store(true)
		batch := &chatv1.SendMessagesRequest{Messages: []*chatv1.SendMessageRequest{
			{UserId: 4, ToUserId: 5, Text: "names unknown"},
			{UserId: 1, ToUserId: 2, Text: "names cached"},
		}}
		res, err := e.client.SendMessages(ctx, connect.NewRequest(batch))
		if err != nil {
			t.Fatalf("SendMessages: %v", err)
		}
		results := res.Msg.GetResults()
		if got := connect.Code(results[0].GetError().GetCode()); got != connect.CodeUnavailable {
			t.Fatalf("message between uncached users with profile down: got %v, want unavailable", results[0])
		}
		if results[1].GetSent().GetMessageId() <= 0 {
			t.Fatalf("message between cached users with profile down: got %v, want it stored", results[1])
		}
		e.profiles.down.Store(false)
		res, err = e.client.SendMessages(ctx, connect.NewRequest(batch))
		if err != nil {
			t.Fatalf("SendMessages with profile back: %v", err)
		}
		for i, r := range res.Msg.GetResults() {
			if r.GetSent().GetMessageId() <= 0 {
				t.Fatalf("message %d with profile back: got %v, want it stored", i, r)
			}
		}
	})
}

// TestRepliesCompressedOnlyWhenLarge: with the options chatsvc mounts, a full SendMessages
// batch's reply (several KiB) goes out plain to a client that accepts gzip, a history page
// of long messages compressed.
func TestRepliesCompressedOnlyWhenLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dbtest.NewURL(t, sqldb.SQLite), 2)
	ctx := context.Background()
	chat := e.contact(t, 1, 2)
	httpClient := rpc.NewHTTPClient()
	rec := rpctest.RecordEncodings(httpClient)
	client := chatv1connect.NewChatServiceClient(httpClient, e.url)

	req := &chatv1.SendMessagesRequest{}
	for i := range 200 {
		req.Messages = append(req.Messages, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: strings.Repeat("x", 2000), ClientMessageId: fmt.Sprintf("k%d", i)})
	}
	res, err := client.SendMessages(ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	if size := proto.Size(res.Msg); size < 4<<10 {
		t.Fatalf("the reply holds %d bytes; the test wants one of several KiB", size)
	}
	if enc := rec.Last(); enc != "" {
		t.Errorf("a SendMessages reply went out with Content-Encoding %q, want none", enc)
	}

	page, err := client.GetMessages(ctx, connect.NewRequest(&chatv1.GetMessagesRequest{UserId: 1, ChatId: chat, Limit: 200}))
	if err != nil {
		t.Fatalf("GetMessages: %v", err)
	}
	if size := proto.Size(page.Msg); size < svc.CompressMinBytes {
		t.Fatalf("the page holds %d bytes, below the threshold", size)
	}
	if enc := rec.Last(); enc != "gzip" {
		t.Errorf("a history page of %d bytes went out with Content-Encoding %q, want gzip", proto.Size(page.Msg), enc)
	}
}
