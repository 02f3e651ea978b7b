// Package testdb opens per-test databases (through shared/sqldb/dbtest) behind a driver
// wrapper that counts the statements sent to the database, so tests and benchmarks can
// assert and report queries per call. It is for tests only.
//
// The wrapper counts every query and exec, prepared or not, and nothing else (BEGIN,
// COMMIT, pings and connection resets are not counted). A Counter is safe for concurrent use.
package testdb

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/charla/charla/profilesvc/internal/store"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// Counter counts statements.
type Counter struct{ n atomic.Int64 }

// Load returns the number of statements so far.
func (c *Counter) Load() int64 { return c.n.Load() }

// Reset sets the count to zero.
func (c *Counter) Reset() { c.n.Store(0) }

// Backends are the dialects tests run on.
var Backends = []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL}

// Open returns a fresh, migrated database on backend behind a counting driver, closed when
// the test ends. It is opened by sqldb.OpenWith, so it is configured exactly as in
// production. MySQL is skipped (or failed) as dbtest decides when it is not configured.
func Open(tb testing.TB, backend sqldb.Dialect) (*sqldb.DB, *Counter) {
	tb.Helper()
	c := new(Counter)
	db, err := sqldb.OpenWith(context.Background(), dbtest.NewURL(tb, backend), func(inner driver.Connector) driver.Connector {
		return &countingConnector{inner: inner, c: c}
	})
	if err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := store.Migrate(context.Background(), db); err != nil {
		tb.Fatalf("testdb: migrate: %v", err)
	}
	c.Reset()
	return db, c
}

type countingConnector struct {
	inner driver.Connector
	c     *Counter
}

func (cc *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cc.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, c: cc.c}, nil
}

func (cc *countingConnector) Driver() driver.Driver { return cc.inner.Driver() }

// countingConn forwards to the driver's connection, counting queries and execs. Both
// drivers implement the context interfaces; the fallbacks keep database/sql's behaviour
// for drivers that do not.
type countingConn struct {
	driver.Conn
	c *Counter
}

func (cn *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := cn.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	rows, err := q.QueryContext(ctx, query, args)
	if err != driver.ErrSkip {
		cn.c.n.Add(1)
	}
	return rows, err
}

func (cn *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := cn.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	res, err := e.ExecContext(ctx, query, args)
	if err != driver.ErrSkip {
		cn.c.n.Add(1)
	}
	return res, err
}

func (cn *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var (
		st  driver.Stmt
		err error
	)
	if p, ok := cn.Conn.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = cn.Conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: st, c: cn.c}, nil
}

func (cn *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := cn.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return cn.Conn.Begin() //nolint:staticcheck // fallback for old drivers
}

func (cn *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := cn.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (cn *countingConn) IsValid() bool {
	if v, ok := cn.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (cn *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := cn.Conn.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type countingStmt struct {
	driver.Stmt
	c *Counter
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.n.Add(1)
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return nil, fmt.Errorf("testdb: driver statement lacks ExecContext")
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.n.Add(1)
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	return nil, fmt.Errorf("testdb: driver statement lacks QueryContext")
}
