package dbtest_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// TestCounter: every query and exec is counted once, prepared or not, inside a transaction
// or not; BEGIN, COMMIT and pings are not.
func TestCounter(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db, c := dbtest.OpenCounting(t, url)
		if got := c.Load(); got != 0 {
			t.Fatalf("after open: got %d statements, want 0 (pings are not counted)", got)
		}
		if _, err := db.ExecContext(ctx, "CREATE TABLE t (n INTEGER)"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		stmt, err := db.PrepareContext(ctx, "INSERT INTO t (n) VALUES (?)")
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
		for i := range 3 {
			if _, err := stmt.ExecContext(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "DELETE FROM t WHERE n = ?", 0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got, want := c.Load(), int64(1+1+3+1); got != want {
			t.Errorf("got %d statements, want %d", got, want)
		}
		c.Reset()
		if got := c.Load(); got != 0 {
			t.Errorf("after Reset: got %d, want 0", got)
		}
		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		if got := c.Load(); got != 0 {
			t.Errorf("a ping: got %d statements, want 0", got)
		}
		if db.Dialect != sqldb.SQLite {
			return
		}
		// The checkpointer's statement, as it runs it (a query: it reads what the
		// checkpoint reports) and as an exec or a prepared statement.
		var busy, logPages, copied int
		if err := db.QueryRowContext(ctx, sqldb.CheckpointSQL).Scan(&busy, &logPages, &copied); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, sqldb.CheckpointSQL); err != nil {
			t.Fatal(err)
		}
		if got := c.Load(); got != 0 {
			t.Errorf("checkpoints: got %d statements, want 0", got)
		}
	})
}
