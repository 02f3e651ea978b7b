package server

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// TestPeersDown: a failing profile service is unavailable (without internals in the
// message); a failing presence service leaves the chat list usable, everyone offline.
func TestPeersDown(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 3)
		ctx := context.Background()
		e.contact(t, 1, 2)
		e.online.set(2, true)
		e.online.down.Store(true)
		list, err := e.client.GetChatList(ctx, connect.NewRequest(&chatv1.GetChatListRequest{UserId: 1}))
		if err != nil || len(list.Msg.GetChats()) != 1 || list.Msg.GetChats()[0].GetIsOtherOnline() {
			t.Fatalf("chat list with presence down: got %v, %v; want one chat, offline", list, err)
		}
		e.profiles.down.Store(true)
		_, err = e.client.CreateContact(ctx, connect.NewRequest(&chatv1.CreateContactRequest{UserId: 1, OtherUserId: 3}))
		wantCode(t, "CreateContact with profile down", err, connect.CodeUnavailable)
		if strings.Contains(err.Error(), "refused") {
			t.Fatalf("error leaks internals: %v", err)
		}
		_, err = e.client.GetChatList(ctx, connect.NewRequest(&chatv1.GetChatListRequest{UserId: 1}))
		wantCode(t, "GetChatList with profile down", err, connect.CodeUnavailable)
		// userNames are cached: sending between known users needs no profile call.
		e.profiles.down.Store(false)
		e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "warm the cache"})
		e.profiles.down.Store(true)
		e.send(t, &chatv1.SendMessageRequest{UserId: 2, ToUserId: 1, Text: "cached"})
	})
}
