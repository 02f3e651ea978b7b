package notifysvc

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/structpb"

	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

const (
	benchUser  = 1
	benchCount = 10_000
)

// seed inserts n notifications for user directly, 500 rows per statement, every other one
// read, all at the same millisecond (the worst case for a timestamp cursor), plus as many
// for another user so the index ranges have neighbours.
func seed(b *testing.B, db *sqldb.DB, user int64, n int) {
	b.Helper()
	const batch = 500
	ctx := context.Background()
	for _, u := range []int64{user + 1, user} {
		for start := 0; start < n; start += batch {
			rows := make([]string, 0, batch)
			args := make([]any, 0, batch*7)
			for i := start; i < start+batch && i < n; i++ {
				rows = append(rows, "(?, ?, ?, ?, ?, ?, ?)")
				args = append(args, u, "new_message", fmt.Sprintf("Mensaje %d", i), "De bob",
					`{"chatId":"12","fromUserId":2}`, int64(1_700_000_000_000), i%2)
			}
			if _, err := db.ExecContext(ctx, "INSERT INTO Notification (UserId, Type, Title, Message, Payload, CreatedAt, IsRead) VALUES "+
				strings.Join(rows, ", "), args...); err != nil {
				b.Fatalf("seed: %v", err)
			}
		}
	}
	// The rows went in behind the store's back: recount the unread counters, as the
	// migration that introduced them does.
	if _, err := db.ExecContext(ctx, "DELETE FROM NotificationUnread"); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO NotificationUnread (UserId, Unread) SELECT UserId, COUNT(*) FROM Notification WHERE IsRead = 0 GROUP BY UserId"); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkList measures ListNotifications through the RPC (HTTP/2, binary protobuf) for a
// user with 10,000 notifications: the newest page of 50, a page deep in the list (a before
// cursor halfway), an unread-only page, and the cheapest call that returns the unread count
// (one unread item).
func BenchmarkList(b *testing.B) {
	for _, backend := range []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL} {
		b.Run(string(backend), func(b *testing.B) {
			db := dbtest.Open(b, backend)
			// Retention must not prune the seeded rows while the benchmark runs.
			client := startService(b, db, Options{RetentionMaxPerUser: 1_000_000})
			seed(b, db, benchUser, benchCount)
			ctx := context.Background()
			first, err := client.ListNotifications(ctx, connect.NewRequest(&notifyv1.ListNotificationsRequest{UserId: benchUser, Limit: 1}))
			if err != nil {
				b.Fatal(err)
			}
			newest := first.Msg.GetNotifications()[0].GetId()
			for _, tc := range []struct {
				name  string
				req   *notifyv1.ListNotificationsRequest
				items int
			}{
				{"page50/newest", &notifyv1.ListNotificationsRequest{UserId: benchUser, Limit: 50}, 50},
				{"page50/deep", &notifyv1.ListNotificationsRequest{UserId: benchUser, Limit: 50, BeforeId: newest - benchCount/2}, 50},
				{"page50/unread_only", &notifyv1.ListNotificationsRequest{UserId: benchUser, Limit: 50, UnreadOnly: true}, 50},
				{"unread_count", &notifyv1.ListNotificationsRequest{UserId: benchUser, Limit: 1, UnreadOnly: true}, 1},
			} {
				b.Run(tc.name, func(b *testing.B) {
					req := connect.NewRequest(tc.req)
					for b.Loop() {
						res, err := client.ListNotifications(ctx, req)
						if err != nil {
							b.Fatal(err)
						}
						if got := len(res.Msg.GetNotifications()); got != tc.items {
							b.Fatalf("items: got %d, want %d", got, tc.items)
						}
						if got := res.Msg.GetUnreadCount(); got != benchCount/2 {
							b.Fatalf("unread count: got %d, want %d", got, benchCount/2)
						}
					}
				})
			}
		})
	}
}

// BenchmarkCreate measures CreateNotification through the RPC for an online owner: the
// insert and counter update in one transaction, and the push through the bus.
func BenchmarkCreate(b *testing.B) {
	for _, backend := range []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL} {
		b.Run(string(backend), func(b *testing.B) {
			client := startService(b, dbtest.Open(b, backend), Options{RetentionMaxPerUser: 1_000_000})
			ctx := context.Background()
			payload, err := structpb.NewStruct(map[string]any{"chatId": "12", "fromUserId": 2})
			if err != nil {
				b.Fatal(err)
			}
			req := connect.NewRequest(&notifyv1.CreateNotificationRequest{
				UserId: benchUser, Type: "new_message", Title: "Nuevo mensaje", Message: "De bob", Payload: payload,
			})
			for b.Loop() {
				if _, err := client.CreateNotification(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
