package server

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// TestDatabaseOutageIsUnavailable: with the database out of reach, reads and writes answer
// unavailable (the edge's 503, PROTOCOL.md §3), never internal.
func TestDatabaseOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	url, db := dbtest.NewCuttableMySQL(t)
	e := newEnv(t, url, 3)
	ctx := context.Background()
	e.contact(t, 1, 2)
	e.send(t, &chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "before"})

	db.Cut()
	_, err := e.client.GetChatList(ctx, connect.NewRequest(&chatv1.GetChatListRequest{UserId: 1}))
	wantCode(t, "GetChatList with the database away", err, connect.CodeUnavailable)
	_, err = e.client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "during"}))
	wantCode(t, "SendMessage with the database away", err, connect.CodeUnavailable)
}
