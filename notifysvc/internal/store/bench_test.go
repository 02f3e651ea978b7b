package store

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/charla/charla/notifysvc/internal/notify"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// BenchmarkStore measures the store alone for a user with 10,000 notifications (half
// unread), to tell the database's share of the RPC benchmark in the root package.
func BenchmarkStore(b *testing.B) {
	for _, backend := range []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL} {
		b.Run(string(backend), func(b *testing.B) {
			ctx := context.Background()
			db := dbtest.Open(b, backend)
			if err := Migrate(ctx, db); err != nil {
				b.Fatal(err)
			}
			s := New(db)
			for _, u := range []int64{2, 1} {
				for start := 0; start < 10_000; start += 500 {
					rows := make([]string, 0, 500)
					args := make([]any, 0, 500*7)
					for i := start; i < start+500; i++ {
						rows = append(rows, "(?, ?, ?, ?, ?, ?, ?)")
						args = append(args, u, "new_message", fmt.Sprintf("Mensaje %d", i), "De bob", `{"chatId":"12"}`, int64(1), i%2)
					}
					if _, err := db.ExecContext(ctx, "INSERT INTO Notification (UserId, Type, Title, Message, Payload, CreatedAt, IsRead) VALUES "+strings.Join(rows, ", "), args...); err != nil {
						b.Fatal(err)
					}
				}
			}
			if _, err := db.ExecContext(ctx, "INSERT INTO NotificationUnread (UserId, Unread) SELECT UserId, COUNT(*) FROM Notification WHERE IsRead = 0 GROUP BY UserId"); err != nil {
				b.Fatal(err)
			}
			b.Run("count_by_index", func(b *testing.B) {
				// What the counter row saves: counting the (UserId, IsRead, Id) index.
				for b.Loop() {
					var n int64
					if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM Notification WHERE UserId = ? AND IsRead = 0", 1).Scan(&n); err != nil || n != 5000 {
						b.Fatalf("count: %d, %v", n, err)
					}
				}
			})
			b.Run("list50", func(b *testing.B) {
				for b.Loop() {
					if page, err := s.List(ctx, notify.ListQuery{UserID: 1, Limit: 50}); err != nil || len(page) != 50 {
						b.Fatalf("List: %d, %v", len(page), err)
					}
				}
			})
			b.Run("list50_unread", func(b *testing.B) {
				for b.Loop() {
					if page, err := s.List(ctx, notify.ListQuery{UserID: 1, Limit: 50, UnreadOnly: true}); err != nil || len(page) != 50 {
						b.Fatalf("List: %d, %v", len(page), err)
					}
				}
			})
			b.Run("unread_count", func(b *testing.B) {
				for b.Loop() {
					if n, err := s.UnreadCount(ctx, 1); err != nil || n != 5000 {
						b.Fatalf("UnreadCount: %d, %v", n, err)
					}
				}
			})
		})
	}
}
