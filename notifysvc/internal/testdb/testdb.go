// Package testdb opens the databases of this module's tests: a fresh database per test on
// every configured backend (shared/sqldb/dbtest), opened with sqldb.Open and closed when
// the test ends.
package testdb

import (
	"context"
	"testing"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// Open opens url (from dbtest) and closes it when the test ends.
func Open(tb testing.TB, url string) *sqldb.DB {
	tb.Helper()
	db, err := sqldb.Open(context.Background(), url)
	if err != nil {
		tb.Fatalf("testdb: open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// OpenBackend opens a fresh database on backend.
func OpenBackend(tb testing.TB, backend sqldb.Dialect) *sqldb.DB {
	tb.Helper()
	return Open(tb, dbtest.NewURL(tb, backend))
}
