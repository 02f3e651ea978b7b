package sqldb_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla/charla/shared/sqldb"
)

// TestSQLiteCheckpointsInBackground: commits never checkpoint the log themselves
// (wal_autocheckpoint is 0 on every connection), yet what they append reaches the
// database file without anyone asking, and Close leaves the log empty.
func TestSQLiteCheckpointsInBackground(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := sqldb.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var auto int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != 0 {
		t.Fatalf("wal_autocheckpoint = %d, want 0 (commits must not checkpoint)", auto)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	sizeBefore := fileSize(t, path)
	body := strings.Repeat("x", 3000) // about a page per row
	for i := 0; i < 400; i++ {
		if _, err := db.ExecContext(ctx, "INSERT INTO t (body) VALUES (?)", body); err != nil {
			t.Fatal(err)
		}
	}
	// Far more than a page's worth of rows was committed; without a checkpoint they stay
	// in the log and the database file keeps its size.
	deadline := time.Now().Add(20 * time.Second)
	for fileSize(t, path) < sizeBefore+400*3000 {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes after 20 s (was %d): the log was never checkpointed", fileSize(t, path), sizeBefore)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if wal := fileSize(t, path+"-wal"); wal != 0 {
		t.Errorf("log of %d bytes left after Close, want it truncated", wal)
	}
	if err := db.Close(); err != nil && !strings.Contains(err.Error(), "closed") {
		t.Errorf("second Close: %v", err)
	}
}

func TestCheckpointMode(t *testing.T) {
	t.Parallel()
	db, err := sqldb.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Checkpoint(context.Background(), "PASSIVE); DROP TABLE x; --"); err == nil || !strings.Contains(err.Error(), "checkpoint mode") {
		t.Fatalf("bad mode: got %v, want an error naming the checkpoint mode", err)
	}
	if _, err := db.Checkpoint(context.Background(), "FULL"); err != nil {
		t.Fatalf("FULL: %v", err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
