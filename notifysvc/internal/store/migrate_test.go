package store

import (
	"context"
	"testing"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// TestUnreadCounterMigration applies only the first migration, stores notifications the
// way that version did, and checks that the second migration fills the unread counters.
func TestUnreadCounterMigration(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := dbtest.OpenURL(t, url)
		first := dbtest.MigrationsBefore(t, migrations, "_unread_count.sql")
		if err := sqldb.Migrate(ctx, db, "notify", first); err != nil {
			t.Fatalf("first migration: %v", err)
		}
		for _, row := range []struct {
			user   int64
			isRead int
		}{{1, 0}, {1, 0}, {1, 1}, {2, 1}, {3, 0}} {
			if _, err := db.ExecContext(ctx, "INSERT INTO Notification (UserId, Type, Title, Message, Payload, CreatedAt, IsRead) VALUES (?, 't', 't', '', '{}', 1, ?)", row.user, row.isRead); err != nil {
				t.Fatal(err)
			}
		}
		if err := Migrate(ctx, db); err != nil {
			t.Fatalf("later migrations: %v", err)
		}
		s := New(db)
		checkUnread(t, s, 1, 2, 3, 4)
		if got, _ := s.UnreadCount(ctx, 1); got != 2 {
			t.Fatalf("unread of user 1: got %d, want 2", got)
		}
	})
}
