package sqldb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// TestStmtCache: a query is prepared once and its statement reused; a statement that
// does not parse is an error naming it; after Close a cached statement no longer runs.
func TestStmtCache(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := dbtest.OpenURL(t, url)
		var c sqldb.StmtCache
		const q = "SELECT 1 + ?"
		first, err := c.Get(ctx, db, q)
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.Get(ctx, db, q)
		if err != nil {
			t.Fatal(err)
		}
		if first != again {
			t.Fatal("the same query was prepared twice")
		}
		var n int
		if err := again.QueryRowContext(ctx, 41).Scan(&n); err != nil || n != 42 {
			t.Fatalf("cached statement: got %d, %v; want 42", n, err)
		}
		if _, err := c.Get(ctx, db, "SELEC nonsense FROM nowhere WHERE 1 = ?"); err == nil || !strings.Contains(err.Error(), `"SELEC nonsense FROM nowhere"`) {
			t.Fatalf("bad statement: got %v, want an error naming it without its WHERE", err)
		}
		if errs := c.Close(); len(errs) != 0 {
			t.Fatalf("close: %v", errs)
		}
		if err := first.QueryRowContext(ctx, 1).Scan(&n); err == nil {
			t.Fatal("a statement still ran after the cache was closed")
		}
	})
}
