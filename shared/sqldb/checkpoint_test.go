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
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := sqldb.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE Blob (Id INTEGER PRIMARY KEY, Data BLOB NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, path)
	blob := strings.Repeat("x", 4000)
	for i := range 200 { // about 200 pages, each in its own commit
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
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
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
