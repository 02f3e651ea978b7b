// Package testdb opens the databases of this module's tests: a fresh database per test on
// every configured backend (shared/sqldb/dbtest), opened with sqldb.Open.
//
// Workaround: shared/sqldb sets the MySQL charset through cfg.Params, which go-sql-driver
// v1.8+ sends as "SET charset=..." and MySQL refuses (Error 1193). Until that is fixed in
// shared/, a refused MySQL open is retried here with the charset set the supported way
// (mysql.Charset), with otherwise the same settings.
package testdb

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// Open opens url (from dbtest) and closes it when the test ends.
func Open(tb testing.TB, url string) *sqldb.DB {
	tb.Helper()
	db, err := sqldb.Open(context.Background(), url)
	if err != nil && strings.HasPrefix(url, "mysql://") && strings.Contains(err.Error(), "1193") {
		db, err = openMySQL(strings.TrimPrefix(url, "mysql://"))
	}
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

func openMySQL(dsn string) (*sqldb.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ParseTime = false
	cfg.MultiStatements = true
	if err := cfg.Apply(mysql.Charset("utf8mb4", "utf8mb4_bin")); err != nil {
		return nil, err
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, err
	}
	return &sqldb.DB{DB: db, Dialect: sqldb.MySQL}, nil
}
