// Package dbtest gives each test its own empty database on every configured backend:
// SQLite always (a file under t.TempDir()), MySQL when MYSQL_TEST_DSN is set (a fresh
// database created on that server and dropped at cleanup). Without MYSQL_TEST_DSN the MySQL
// run is skipped with a printed reason; REQUIRE_MYSQL=1 turns that skip into a failure.
//
// OpenCounting opens such a database behind a statement counter, the one helper tests use
// to prove that an operation runs a constant number of queries.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/tcpproxy"
)

// Backends are the dialects every store test runs on.
var Backends = []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL}

// ForEachBackend runs fn as a parallel subtest per backend ("sqlite", "mysql"), each
// with the URL of a fresh, empty database of its own.
func ForEachBackend(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	for _, backend := range Backends {
		t.Run(string(backend), func(t *testing.T) {
			t.Parallel()
			fn(t, NewURL(t, backend))
		})
	}
}

// NewURL returns a DATABASE_URL for a fresh, empty database on backend, removed when the
// test ends. For MySQL without MYSQL_TEST_DSN it skips the test (or fails it under
// REQUIRE_MYSQL=1).
func NewURL(tb testing.TB, backend sqldb.Dialect) string {
	tb.Helper()
	switch backend {
	case sqldb.SQLite:
		return "sqlite://" + filepath.Join(tb.TempDir(), "test.db")
	case sqldb.MySQL:
		return newMySQL(tb)
	default:
		tb.Fatalf("dbtest: unknown backend %q", backend)
		return ""
	}
}

// Open returns a fresh database on backend, closed when the test ends.
func Open(tb testing.TB, backend sqldb.Dialect) *sqldb.DB {
	tb.Helper()
	return OpenURL(tb, NewURL(tb, backend))
}

// OpenURL opens url (one NewURL or ForEachBackend gave) and closes it when the test ends.
func OpenURL(tb testing.TB, url string) *sqldb.DB {
	tb.Helper()
	db, err := sqldb.Open(context.Background(), url)
	if err != nil {
		tb.Fatalf("dbtest: open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// MySQLDSN returns MYSQL_TEST_DSN, skipping the test with the reason when it is unset
// (failing it when REQUIRE_MYSQL=1).
func MySQLDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("MYSQL_TEST_DSN")
	if dsn == "" {
		const reason = "MySQL tests skipped: MYSQL_TEST_DSN is not set (e.g. root@tcp(127.0.0.1:3306)/test)"
		if os.Getenv("REQUIRE_MYSQL") == "1" {
			tb.Fatal(reason + ", and REQUIRE_MYSQL=1 requires them")
		}
		tb.Skip(reason)
	}
	return dsn
}

// NewCuttableMySQL returns the URL of a fresh MySQL database reached through a TCP proxy,
// and the proxy: Cut puts the database out of reach (every connection dropped, new ones
// refused), as a database outage would. It skips like NewURL without MYSQL_TEST_DSN.
func NewCuttableMySQL(tb testing.TB) (string, *tcpproxy.Proxy) {
	tb.Helper()
	url := newMySQL(tb)
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(url, "mysql://"))
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	if cfg.Net != "tcp" {
		tb.Skipf("dbtest: MYSQL_TEST_DSN uses %s, not tcp: no proxy can cut it", cfg.Net)
	}
	p, err := tcpproxy.New(cfg.Addr)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	tb.Cleanup(p.Cut)
	cfg.Addr = p.Addr()
	return "mysql://" + cfg.FormatDSN(), p
}

func newMySQL(tb testing.TB) string {
	tb.Helper()
	cfg, err := mysql.ParseDSN(MySQLDSN(tb))
	if err != nil {
		tb.Fatalf("dbtest: MYSQL_TEST_DSN: %v", err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		tb.Fatalf("dbtest: open mysql: %v", err)
	}
	defer admin.Close()
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := "charla_test_" + hex.EncodeToString(suffix[:])
	if _, err := admin.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		tb.Fatalf("dbtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		admin, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			tb.Errorf("dbtest: open mysql for cleanup: %v", err)
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS `" + name + "`"); err != nil {
			tb.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return fmt.Sprintf("mysql://%s", cfg.FormatDSN())
}
