package store

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/charla/charla/notifysvc/internal/notify"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// TestQueryPlans checks that every read the service makes is served by an index: no full
// scan, no sort of a temporary table. On MySQL the page statements name their index (FORCE
// INDEX), so EXPLAIN must show it and no filesort.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	statements := func(d sqldb.Dialect) map[string][]any {
		m := map[string][]any{}
		for _, q := range []notify.ListQuery{
			{UserID: 1, Limit: 50},
			{UserID: 1, Limit: 50, BeforeID: 10},
			{UserID: 1, Limit: 50, UnreadOnly: true},
			{UserID: 1, Limit: 50, UnreadOnly: true, BeforeID: 10},
		} {
			s, args := listQuery(d, q)
			m[s] = args
		}
		m["SELECT Unread FROM NotificationUnread WHERE UserId = ?"] = []any{1}
		m["SELECT Id, UserId, IsRead FROM Notification WHERE CreatedAt < ? ORDER BY CreatedAt, Id LIMIT ?"] = []any{1, 500}
		m["SELECT Id FROM Notification WHERE UserId = ? ORDER BY Id DESC LIMIT 1 OFFSET ?"] = []any{1, 1000}
		m["SELECT Id, UserId, IsRead FROM Notification WHERE UserId = ? AND Id <= ? ORDER BY Id LIMIT ?"] = []any{1, 10, 500}
		return m
	}
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		db := dbtest.OpenURL(t, url)
		if err := Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		for q, args := range statements(db.Dialect) {
			if db.Dialect == sqldb.SQLite {
				for _, line := range dbtest.SQLitePlan(t, db, q, args...) {
					if strings.HasPrefix(line, "SCAN") || strings.Contains(line, "TEMP B-TREE") {
						t.Errorf("%s: plan %q, want an index search", q, line)
					}
				}
				continue
			}
			if !strings.Contains(q, "FORCE INDEX") {
				continue // the planner of an empty MySQL table says little
			}
			key, extra := explainMySQL(t, db, q, args)
			if key == "" || !strings.Contains(q, key) || strings.Contains(extra, "filesort") {
				t.Errorf("%s: key %q, extra %q; want the forced index and no filesort", q, key, extra)
			}
		}
	})
}

func explainMySQL(t *testing.T, db *sqldb.DB, q string, args []any) (key, extra string) {
	t.Helper()
	rows, err := db.Query("EXPLAIN "+q, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, c := range cols {
			switch c {
			case "key":
				key = vals[i].String
			case "Extra":
				extra = vals[i].String
			}
		}
	}
	return key, extra
}
