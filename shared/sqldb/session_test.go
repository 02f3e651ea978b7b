package sqldb_test

import (
	"context"
	"database/sql/driver"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charla/charla/shared/sqldb"
)

// TestSessionConnector: every connection runs the statement before use; one that fails
// is refused with an error naming the statement.
func TestSessionConnector(t *testing.T) {
	ctx := context.Background()
	url := "sqlite://" + filepath.Join(t.TempDir(), "session.db")
	db, err := sqldb.OpenWith(ctx, url, func(c driver.Connector) driver.Connector {
		return sqldb.SessionConnector(c, "PRAGMA busy_timeout = 1234")
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conns := make([]interface{ Close() error }, 0, 3)
	for range 3 { // three connections at once: each its own session
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var ms int
		if err := c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&ms); err != nil || ms != 1234 {
			t.Fatalf("busy_timeout of a new connection: %d, %v; want 1234", ms, err)
		}
	}
	for _, c := range conns {
		c.Close()
	}

	_, err = sqldb.OpenWith(ctx, url, func(c driver.Connector) driver.Connector {
		return sqldb.SessionConnector(c, "SET nothing = 1")
	})
	if err == nil || !strings.Contains(err.Error(), `session setting "SET nothing = 1"`) {
		t.Fatalf("open with a failing session statement: %v, want an error naming it", err)
	}
}
