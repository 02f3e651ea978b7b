package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// closedAddr returns an address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestIsUnavailableMySQLRefused(t *testing.T) {
	t.Parallel()
	_, err := sqldb.Open(context.Background(), "mysql://root@tcp("+closedAddr(t)+")/test")
	if err == nil || !sqldb.IsUnavailable(err) {
		t.Fatalf("Open on a closed port: err = %v, want an unavailable error", err)
	}
}

// TestIsUnavailableMySQLHangUp: a server that accepts and hangs up at once (a proxy whose
// backend is gone, a server being killed) is unavailable, not internal.
func TestIsUnavailableMySQLHangUp(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	_, err = sqldb.Open(context.Background(), "mysql://root@tcp("+l.Addr().String()+")/test")
	if err == nil || !sqldb.IsUnavailable(err) {
		t.Fatalf("Open on a server that hangs up: err = %v, want an unavailable error", err)
	}
}

// TestIsUnavailableMySQLKilled: a connection killed under an open transaction (the server
// restarting, a failover) makes the next statement fail as unavailable.
func TestIsUnavailableMySQLKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, sqldb.MySQL)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	var id int64
	if err := tx.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL %d", id)); err != nil {
		t.Fatalf("KILL: %v", err)
	}
	_, err = tx.ExecContext(ctx, "SELECT 1")
	if err == nil || !sqldb.IsUnavailable(err) {
		t.Fatalf("statement on a killed connection: err = %v, want an unavailable error", err)
	}
}

// TestIsUnavailableSQLiteBusy: a database locked by another writer for longer than the
// busy timeout is unavailable (try again), not internal.
func TestIsUnavailableSQLiteBusy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "busy.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	if _, err := a.ExecContext(ctx, "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	conn, err := a.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK") //nolint:errcheck
	_, err = b.ExecContext(ctx, "INSERT INTO t VALUES (1)")
	if err == nil || !sqldb.IsUnavailable(err) {
		t.Fatalf("write while another holds the lock: err = %v, want an unavailable error", err)
	}
}

func TestIsUnavailableNotForRequestErrors(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		sql.ErrNoRows,
		fmt.Errorf("insert: %w", sqldb.ErrDuplicate),
		&mysql.MySQLError{Number: 1062, Message: "Duplicate entry"},
		&mysql.MySQLError{Number: 1064, Message: "You have an error in your SQL syntax"},
		errors.New("boom"),
	} {
		if sqldb.IsUnavailable(err) {
			t.Errorf("IsUnavailable(%v) = true, want false", err)
		}
	}
	for _, err := range []error{
		fmt.Errorf("query: %w", mysql.ErrInvalidConn),
		&mysql.MySQLError{Number: 1040, Message: "Too many connections"},
		&mysql.MySQLError{Number: 1213, Message: "Deadlock found"},
	} {
		if !sqldb.IsUnavailable(err) {
			t.Errorf("IsUnavailable(%v) = false, want true", err)
		}
	}
}
