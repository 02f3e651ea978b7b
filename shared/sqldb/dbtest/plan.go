package dbtest

import (
	"testing"

	"github.com/charla/charla/shared/sqldb"
)

// SQLitePlan returns the detail lines of SQLite's EXPLAIN QUERY PLAN for q with args
// (such as "SEARCH u USING INDEX ChatMessage_Unread (ChatId=? AND ToUserId=?)"), so that
// a test can check which index a statement uses.
func SQLitePlan(tb testing.TB, db *sqldb.DB, q string, args ...any) []string {
	tb.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		tb.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			tb.Fatalf("explain %s: %v", q, err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("explain %s: %v", q, err)
	}
	return lines
}
