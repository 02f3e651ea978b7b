package dbtest

// The query counter: a driver wrapper that counts the statements sent to the database, so
// tests and benchmarks can assert and report queries per call on a database configured
// exactly as in production (sqldb.OpenWith). It counts every query and exec, prepared or
// not, and nothing else (BEGIN, COMMIT, pings, connection resets and SQLite's background
// checkpoints, sqldb.CheckpointSQL, are not counted).

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/charla/charla/shared/sqldb"
)

// Counter counts the statements a database opened by OpenCounting runs. It is safe for
// concurrent use.
type Counter struct{ n atomic.Int64 }

// Load returns the number of statements so far.
func (c *Counter) Load() int64 { return c.n.Load() }

// Reset sets the count to zero.
func (c *Counter) Reset() { c.n.Store(0) }

// OpenCounting is OpenURL behind a counting driver: it opens url (one NewURL or
// ForEachBackend gave) with sqldb.OpenWith, closes it when the test ends, and counts every
// statement in the returned Counter.
func OpenCounting(tb testing.TB, url string) (*sqldb.DB, *Counter) {
	tb.Helper()
	c := new(Counter)
	db, err := sqldb.OpenWith(context.Background(), url, func(inner driver.Connector) driver.Connector {
		return &countingConnector{inner: inner, c: c}
	})
	if err != nil {
		tb.Fatalf("dbtest: open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
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
	if err != driver.ErrSkip && query != sqldb.CheckpointSQL {
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
	if err != driver.ErrSkip && query != sqldb.CheckpointSQL {
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
	if query == sqldb.CheckpointSQL {
		return st, nil
	}
	return &countingStmt{Stmt: st, c: cn.c}, nil
}

func (cn *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := cn.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	//lint:ignore SA1019 the fallback database/sql itself uses for drivers without BeginTx
	return cn.Conn.Begin()
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
	return nil, fmt.Errorf("dbtest: driver statement lacks ExecContext")
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.n.Add(1)
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	return nil, fmt.Errorf("dbtest: driver statement lacks QueryContext")
}
