package server

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// TestDatabaseOutageIsUnavailable: with the database out of reach, reads and writes answer
// unavailable (503 at the edge), never internal.
func TestDatabaseOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	url, proxy := dbtest.NewCuttableMySQL(t)
	e := newEnv(t, url, envOptions{})
	ctx := context.Background()
	e.create(t, &notifyv1.CreateNotificationRequest{UserId: 1, Type: "contact_added", Title: "t"})

	proxy.Cut()
	_, err := e.client.ListNotifications(ctx, connect.NewRequest(&notifyv1.ListNotificationsRequest{UserId: 1}))
	wantCode(t, err, connect.CodeUnavailable, "")
	_, err = e.client.CreateNotification(ctx, connect.NewRequest(&notifyv1.CreateNotificationRequest{UserId: 1, Type: "contact_added", Title: "t"}))
	wantCode(t, err, connect.CodeUnavailable, "")
}
