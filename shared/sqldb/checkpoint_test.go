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

// TestCheckpointerCopiesTheLog: committed pages reach the database file without any
// commit checkpointing (the log stays far below the connections' own threshold), and
// Close stops the checkpointer (the package's leak check fails otherwise).
func TestCheckpointerCopiesTheLog(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.db")
	db := openSQLite(t, path)
	defer db.Close()
	writeAndWaitForCheckpoint(t, db, path)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestCheckpointerMovesToAnotherDBOfTheFile: two DBs on one file share one checkpointer;
// when the one it runs on closes, the other's commits still reach the file.
func TestCheckpointerMovesToAnotherDBOfTheFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.db")
	first := openSQLite(t, path)
	second := openSQLite(t, path)
	defer second.Close()
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	writeAndWaitForCheckpoint(t, second, path)
}

func openSQLite(t *testing.T, path string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// writeAndWaitForCheckpoint commits about 200 pages, each in its own commit, and waits
// until the database file holds them.
func writeAndWaitForCheckpoint(t *testing.T, db *sqldb.DB, path string) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE Blob (Id INTEGER PRIMARY KEY, Data BLOB NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, path)
	blob := strings.Repeat("x", 4000)
	for i := range 200 {
		if _, err := db.ExecContext(ctx, "INSERT INTO Blob (Id, Data) VALUES (?, ?)", i, blob); err != nil {
			t.Fatal(err)
		}
	}
	const want = 200 * 4000
	deadline := time.Now().Add(30 * time.Second)
	for fileSize(t, path)-before < want {
		if time.Now().After(deadline) {
			t.Fatalf("database file grew by %d bytes in 30 s, want at least %d: the log was not checkpointed", fileSize(t, path)-before, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM Blob").Scan(&n); err != nil || n != 200 {
		t.Fatalf("rows after checkpoints: %d, %v; want 200", n, err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
