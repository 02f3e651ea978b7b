package sqldb_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// openCounter opens url (with a short busy timeout on SQLite) holding a table Counter
// with one row, Id 1, N 0.
func openCounter(t *testing.T, url string) *sqldb.DB {
	t.Helper()
	ctx := context.Background()
	var wrap func(driver.Connector) driver.Connector
	if strings.HasPrefix(url, "sqlite://") {
		// A busy_timeout of 20 ms instead of the 10 s Open sets, so that a lock held
		// elsewhere fails a BEGIN with SQLITE_BUSY at once.
		wrap = func(c driver.Connector) driver.Connector {
			return sqldb.SessionConnector(c, "PRAGMA busy_timeout = 20")
		}
	}
	db, err := sqldb.OpenWith(ctx, url, wrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{
		"CREATE TABLE Counter (Id INT PRIMARY KEY, N INT NOT NULL)",
		"INSERT INTO Counter (Id, N) VALUES (1, 0)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return db
}

func counter(t *testing.T, db *sqldb.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT N FROM Counter WHERE Id = 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInTxRetriesLostLockRace: a transaction that loses a real lock race (SQLite: another
// connection holds the write lock, so BEGIN fails busy; MySQL: another transaction holds
// the row past innodb_lock_wait_timeout) runs again once the lock is gone, and its effect
// is committed exactly once.
func TestInTxRetriesLostLockRace(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := openCounter(t, url)
		other := dbtest.OpenURL(t, url)
		blocker, err := other.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer blocker.Rollback() //nolint:errcheck // released below; a no-op then
		// Holds the row (MySQL) or the database's write lock (SQLite) until rolled back.
		if _, err := blocker.ExecContext(ctx, "UPDATE Counter SET N = N + 100 WHERE Id = 1"); err != nil {
			t.Fatal(err)
		}
		var retried []error
		sqldb.SetOnRetry(db, func(attempt int, err error) {
			retried = append(retried, err)
			if attempt == 1 {
				_ = blocker.Rollback()
			}
		})
		err = db.InTx(ctx, func(tx *sql.Tx) error {
			if db.Dialect == sqldb.MySQL {
				// Wait 1 s for the row, not the server's default of 50 s.
				if _, err := tx.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = 1"); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, "UPDATE Counter SET N = N + 1 WHERE Id = 1")
			return err
		})
		if err != nil {
			t.Fatalf("InTx with the lock released after the first attempt: %v, want success after a retry", err)
		}
		if len(retried) != 1 || !sqldb.IsRetryable(retried[0]) {
			t.Errorf("retries = %v, want exactly one, after a lost lock race", retried)
		}
		if got := counter(t, db); got != 1 {
			t.Errorf("N = %d, want 1 (the blocker rolled back, the transaction committed once)", got)
		}
	})
}

// TestInTxReadCommittedOnMySQL: on MySQL, InTx's transactions see rows committed after
// they began (READ COMMITTED, not REPEATABLE READ).
func TestInTxReadCommittedOnMySQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t, sqldb.MySQL)
	db := openCounter(t, url)
	other := dbtest.OpenURL(t, url)
	var first, second int
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT N FROM Counter WHERE Id = 1").Scan(&first); err != nil {
			return err
		}
		if _, err := other.ExecContext(ctx, "UPDATE Counter SET N = 7 WHERE Id = 1"); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, "SELECT N FROM Counter WHERE Id = 1").Scan(&second)
	})
	if err != nil {
		t.Fatal(err)
	}
	if first != 0 || second != 7 {
		t.Errorf("reads = %d then %d, want 0 then 7 (the committed update seen: READ COMMITTED)", first, second)
	}
}

// TestRetryPolicy: what runs again and how often, on either backend's errors.
func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	deadlock := &mysql.MySQLError{Number: 1213, Message: "Deadlock found"}
	db := dbtest.Open(t, sqldb.SQLite)
	for _, tc := range []struct {
		name      string
		err       error
		wantCalls int
	}{
		{"success", nil, 1},
		{"other error", errors.New("boom"), 1},
		{"duplicate key", &mysql.MySQLError{Number: 1062}, 1},
		{"deadlock every time", deadlock, sqldb.TxAttempts},
		{"lock wait timeout every time", &mysql.MySQLError{Number: 1205}, sqldb.TxAttempts},
	} {
		calls := 0
		err := db.Retry(context.Background(), func() error { calls++; return tc.err })
		if calls != tc.wantCalls || !errors.Is(err, tc.err) {
			t.Errorf("%s: %d calls, err %v; want %d calls, err %v", tc.name, calls, err, tc.wantCalls, tc.err)
		}
	}

	// The pause before another attempt ends with the context.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sqldb.SetOnRetry(db, func(int, error) { cancel() })
	calls := 0
	err := db.Retry(ctx, func() error { calls++; return deadlock })
	if calls != 1 || !errors.Is(err, context.Canceled) || !sqldb.IsRetryable(err) {
		t.Errorf("canceled during the pause: %d calls, err %v; want 1 call, an error wrapping context.Canceled and the deadlock", calls, err)
	}
}

// TestWriteStatementContext: on SQLite the statements of a write transaction run with a
// context that cannot be cancelled (so the driver watches none) and keeps the caller's
// values, while the transaction itself still ends with the caller's context; on MySQL the
// context is the caller's.
func TestWriteStatementContext(t *testing.T) {
	type key struct{}
	t.Run("sqlite", func(t *testing.T) {
		db := openCounter(t, dbtest.NewURL(t, sqldb.SQLite))
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "trace"))
		defer cancel()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // the commit below fails
		sctx := db.WriteStatementContext(ctx)
		if sctx.Done() != nil || sctx.Value(key{}) != "trace" {
			t.Fatalf("statement context: Done %v, value %v; want no Done channel and the caller's value", sctx.Done(), sctx.Value(key{}))
		}
		if _, err := tx.ExecContext(sctx, "UPDATE Counter SET N = N + 1 WHERE Id = 1"); err != nil {
			t.Fatalf("statement in the transaction: %v", err)
		}
		cancel()
		if err := tx.Commit(); err == nil {
			t.Fatal("commit after the caller's cancellation succeeded; want the transaction ended")
		}
		if n := counter(t, db); n != 0 {
			t.Fatalf("counter: %d; want 0 (the cancelled transaction rolled back)", n)
		}
	})
	t.Run("mysql", func(t *testing.T) {
		db := openCounter(t, dbtest.NewURL(t, sqldb.MySQL))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // cancelled below
		sctx := db.WriteStatementContext(ctx)
		if _, err := tx.ExecContext(sctx, "UPDATE Counter SET N = N + 1 WHERE Id = 1"); err != nil {
			t.Fatalf("statement in the transaction: %v", err)
		}
		cancel()
		// Outside the (now rolled back) transaction, so that only the context can refuse it.
		if _, err := db.ExecContext(sctx, "UPDATE Counter SET N = N + 1 WHERE Id = 1"); !errors.Is(err, context.Canceled) {
			t.Fatalf("statement after the caller's cancellation: %v; want context.Canceled (MySQL keeps the caller's cancellation)", err)
		}
		if n := counter(t, db); n != 0 {
			t.Fatalf("counter: %d; want 0 (the cancelled transaction rolled back)", n)
		}
	})
}
