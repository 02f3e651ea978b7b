// Package sqldb opens the relational database a service keeps its tables in (embedded SQLite
// or MySQL, chosen by DATABASE_URL), applies that service's versioned migrations, and turns
// driver errors that callers must tell apart (a duplicate key) into sentinel errors.
//
// A *DB is safe for concurrent use, like the *sql.DB it wraps.
package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/XSAM/otelsql"
	"github.com/go-sql-driver/mysql"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/telemetry/dbtel"
)

// Dialect names the SQL dialect behind a DB; stores pick their statements by it.
type Dialect string

const (
	// SQLite is the embedded default (modernc.org/sqlite, pure Go).
	SQLite Dialect = "sqlite"
	// MySQL is MySQL or MariaDB through github.com/go-sql-driver/mysql.
	MySQL Dialect = "mysql"
)

// DefaultURL is the database used when DATABASE_URL is empty.
const DefaultURL = "sqlite://./data/charla.db"

// DB is an open database and the dialect it speaks.
type DB struct {
	*sql.DB
	// Dialect tells which SQL the database speaks.
	Dialect Dialect

	// onRetry, when set (by tests), is told of every attempt InTx or Retry runs again.
	onRetry func(attempt int, err error)
	// checkpointFile names the SQLite file whose checkpointer (checkpoint.go) this DB
	// joined; empty with MySQL.
	checkpointFile string
}

// Close leaves the file's checkpointer, if any (the checkpoints stop running on this DB),
// then closes the database.
func (d *DB) Close() error {
	leaveCheckpointer(d)
	return d.DB.Close()
}

// ErrDuplicate is returned (wrapped) when an insert or update hits a unique key.
var ErrDuplicate = errors.New("duplicate key")

// ParseURL splits a DATABASE_URL into the dialect and the driver's DSN. An empty URL means
// DefaultURL. It names what was wrong when the URL is not usable.
func ParseURL(url string) (Dialect, string, error) {
	if url == "" {
		url = DefaultURL
	}
	switch {
	case strings.HasPrefix(url, "sqlite://"):
		path := strings.TrimPrefix(url, "sqlite://")
		if path == "" {
			return "", "", errors.New("sqlite:// needs a file path, as in sqlite://./data/charla.db")
		}
		return SQLite, path, nil
	case strings.HasPrefix(url, "mysql://"):
		dsn := strings.TrimPrefix(url, "mysql://")
		if _, err := mysql.ParseDSN(dsn); err != nil {
			return "", "", fmt.Errorf("mysql:// needs a go-sql-driver DSN such as user:pass@tcp(host:3306)/db: %w", err)
		}
		return MySQL, dsn, nil
	default:
		return "", "", fmt.Errorf("want sqlite://PATH or mysql://DSN, got %q", redact(url))
	}
}

// redact hides a password in a URL that is echoed in an error.
func redact(url string) string {
	if at := strings.LastIndex(url, "@"); at > 0 {
		if colon := strings.Index(url, ":"); colon >= 0 && colon < at {
			return url[:colon+1] + "***" + url[at:]
		}
	}
	return url
}

// Open connects to the database named by url (see ParseURL) and checks that it answers.
// The connection is instrumented (package telemetry/dbtel): every statement run inside a
// traced call gets a span named by its SQL, without argument values, and every statement
// is timed in the db.client.operation.duration histogram.
func Open(ctx context.Context, url string) (*DB, error) {
	return OpenWith(ctx, url, nil)
}

// OpenWith is Open with the driver's connector passed through wrap first (when not nil),
// so that a test can observe every statement (a query counter) on a database configured
// exactly as in production.
func OpenWith(ctx context.Context, url string, wrap func(driver.Connector) driver.Connector) (*DB, error) {
	dialect, dsn, err := ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	var connector driver.Connector
	var system dbtel.System
	switch dialect {
	case SQLite:
		connector, err = sqliteConnector(dsn)
		system = dbtel.SQLite
	case MySQL:
		connector, err = mysqlConnector(dsn)
		system = dbtel.MySQL
	}
	if err != nil {
		return nil, err
	}
	if wrap != nil {
		connector = wrap(connector)
	}
	db := otelsql.OpenDB(connector, dbtel.Options(system)...)
	d := &DB{DB: db, Dialect: dialect}
	d.SetPool(PoolFor(dialect))
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	if dialect == SQLite {
		joinCheckpointer(d, dsn)
	}
	return d, nil
}

// Pool bounds a database's connection pool. Every pooled connection holds a socket or file
// (and, with MySQL, a goroutine of the driver watching for cancellation), so the pool must
// shrink back once a burst is over: after a database outage, the requests that queued
// meanwhile all get a connection at once when it returns, and with as many idle
// connections allowed as open ones and no idle timeout, the process kept every one of them
// for good (the step from 37 to 60 goroutines and 27 to 50 open files seen in chat after
// the database drills).
type Pool struct {
	// MaxOpen bounds the connections open at once; callers beyond it wait.
	MaxOpen int
	// MaxIdle bounds the connections kept open without a user; a connection handed back
	// beyond it is closed at once.
	MaxIdle int
	// MaxIdleTime closes a connection that stayed unused this long.
	MaxIdleTime time.Duration
	// MaxLifetime replaces a connection this old, so that none outlives a failover or a
	// server restart behind a proxy for long, and stale ones do not pile up.
	MaxLifetime time.Duration
}

// PoolFor returns the pool limits Open applies to a dialect. SQLite has one writer and
// fast local reads: a few connections serve it, all of which may idle (they hold only
// file descriptors, and reopening one costs its pragmas and prepared statements). MySQL
// gets more, half of which may idle.
func PoolFor(d Dialect) Pool {
	if d == SQLite {
		return Pool{MaxOpen: 8, MaxIdle: 8, MaxIdleTime: 5 * time.Minute, MaxLifetime: time.Hour}
	}
	return Pool{MaxOpen: 32, MaxIdle: 16, MaxIdleTime: time.Minute, MaxLifetime: 30 * time.Minute}
}

// SetPool applies p to the database's pool (Open applies PoolFor(db.Dialect)).
func (db *DB) SetPool(p Pool) {
	db.SetMaxOpenConns(p.MaxOpen)
	db.SetMaxIdleConns(p.MaxIdle)
	db.SetConnMaxIdleTime(p.MaxIdleTime)
	db.SetConnMaxLifetime(p.MaxLifetime)
}

func sqliteConnector(path string) (driver.Connector, error) {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create directory for sqlite database: %w", err)
		}
	}
	// WAL lets readers run beside the one writer; busy_timeout makes a second writer wait
	// instead of failing; _txlock=immediate takes the write lock at BEGIN, so two
	// transactions never deadlock upgrading from read to write. Checkpoints run off the
	// commits (checkpoint.go). temp_store(MEMORY) keeps statement journals (a multi-row
	// INSERT's undo inside a transaction) in memory instead of a temporary file created and
	// removed by every batch.
	dsn := "file:" + path + "?_txlock=immediate" +
		"&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)" +
		"&_pragma=temp_store(MEMORY)" +
		fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)&_pragma=journal_size_limit(%d)", autoCheckpointPages, journalSizeLimit)
	return dsnConnector{drv: &sqlite.Driver{}, dsn: dsn}, nil
}

// dsnConnector is a driver.Connector for a driver that only knows Open(dsn).
type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

func mysqlConnector(dsn string) (driver.Connector, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse mysql DSN: %w", err)
	}
	// Times are stored as Unix milliseconds in BIGINT columns, so no time parsing is needed;
	// utf8mb4 keeps 4-byte emoji byte-exact.
	cfg.ParseTime = false
	// The collation implies the utf8mb4 character set for the connection.
	cfg.Collation = "utf8mb4_bin"
	cfg.MultiStatements = true
	// A statement run with arguments but not prepared beforehand (most of them: the batch
	// statements' IN lists change length from call to call) is sent as one query with its
	// arguments escaped in by the driver, instead of a prepare, an execute and a close: one
	// round trip instead of two, and no server-side prepare. The driver escapes for the
	// connection's character set (utf8mb4 here) and falls back to a prepare for anything it
	// cannot escape safely. Statements prepared on purpose (the stores' statement caches)
	// still run as prepared statements.
	cfg.InterpolateParams = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open mysql database: %w", err)
	}
	// Asking for the level per transaction (sql.LevelReadCommitted) makes go-sql-driver send
	// SET TRANSACTION ISOLATION LEVEL before every START TRANSACTION: a round trip per
	// transaction (one in five of a small chat batch's) that setting the session's default
	// once saves. A connection keeps its session settings for its lifetime; the driver
	// never resets them.
	return SessionConnector(connector, readCommittedSQL), nil
}

// readCommittedSQL makes READ COMMITTED (InTx's level) the session's default. It is the
// one spelling MariaDB and MySQL share: the variable itself is tx_isolation on MariaDB 10
// and transaction_isolation on MySQL 8.
const readCommittedSQL = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"

// SessionConnector returns a connector that runs statement on every connection c opens,
// before the pool hands it out: a session setting every connection needs. It fails the
// connection (and closes it) when the statement fails.
func SessionConnector(c driver.Connector, statement string) driver.Connector {
	return sessionConnector{Connector: c, statement: statement}
}

type sessionConnector struct {
	driver.Connector
	statement string
}

func (c sessionConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	execer, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("session setting %q: the connection cannot run statements directly", c.statement)
	}
	if _, err := execer.ExecContext(ctx, c.statement, nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("session setting %q: %w", c.statement, err)
	}
	return conn, nil
}

// IsDuplicate reports whether err comes from a unique-key violation on either backend.
func IsDuplicate(err error) bool {
	if errors.Is(err, ErrDuplicate) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsUnavailable reports whether err means the database could not be reached or dropped the
// connection (or another backing service did: it includes rpc.IsUnavailable), so that the
// request may succeed when tried again and answers 503, never 500. Besides the transport
// failures of rpc.IsUnavailable (connection refused or reset, driver.ErrBadConn, ...) these
// are the drivers' own: MySQL's "invalid connection" (the connection broke mid-statement),
// too many connections (1040), server shutdown (1053), a read-only server during a failover
// (1290, 1836), a connection killed (1927), a deadlock or lock wait timeout that outlived
// InTx's attempts (1213, 1205); SQLite busy or locked once busy_timeout has run out.
func IsUnavailable(err error) bool {
	if rpc.IsUnavailable(err) || errors.Is(err, mysql.ErrInvalidConn) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, 1053, 1205, 1213, 1290, 1836, 1927:
			return true
		}
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff // the primary result code
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}

// The transaction policy every store shares (InTx): the isolation level, which failures
// run a transaction again, how often and after what pause.
const (
	// TxAttempts bounds how often InTx runs one transaction.
	TxAttempts = 8
	// txBackoffBase and txBackoffMax bound the pause before another attempt: it doubles
	// from the base per attempt up to the max, and a random part of it is skipped, so that
	// the transactions that collided do not meet again at the same instant.
	txBackoffBase = 2 * time.Millisecond
	txBackoffMax  = 100 * time.Millisecond
)

// InTx runs fn in a transaction, committing when fn returns nil and rolling back
// otherwise, under the one policy every store shares:
//
//   - On MySQL the transaction runs at READ COMMITTED: rewrites of different users' rows
//     would otherwise take gap locks on shared secondary indexes and deadlock each other at
//     REPEATABLE READ (lock what must not change with SELECT ... FOR UPDATE). SQLite
//     serializes writers (BEGIN IMMEDIATE), so its transactions are serializable.
//   - A transaction that lost a lock race (IsRetryable: a MySQL deadlock or lock wait
//     timeout, SQLite busy or locked once busy_timeout has run out) is run again from the
//     start, up to TxAttempts times, after a growing, jittered pause. fn must therefore
//     have no effects outside the transaction (or effects that may repeat).
//   - The pauses end with ctx: InTx then returns an error that wraps both ctx's error and
//     the last attempt's.
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	// No sql.TxOptions: on MySQL every connection's session is READ COMMITTED already
	// (SessionConnector with readCommittedSQL), which saves a SET per transaction.
	return db.Retry(ctx, func() error { return db.inTx(ctx, fn) })
}

// WriteStatementContext returns the context for the statements inside a short write
// transaction (one begun by InTx or BeginTx): ctx itself on MySQL, where cancelling a
// statement is what frees a connection stuck on the network; on SQLite, ctx without its
// cancellation (its values, the trace among them, stay). SQLite's driver starts a goroutine
// for every statement run with a cancellable context, to interrupt it when the context
// ends, and sets and clears a progress handler around it: half the goroutines the chat
// writer started per message (BenchmarkWriterUnderLoad's goroutines/op, 4.3 → 2.2), to
// guard statements that have nothing to wait for: the transaction took the write lock at
// BEGIN (IMMEDIATE), so none of its statements waits for a lock, and a bounded statement
// ends by itself. BEGIN and COMMIT keep ctx.
func (db *DB) WriteStatementContext(ctx context.Context) context.Context {
	if db.Dialect != SQLite {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// Retry runs attempt, the whole of one transaction, under InTx's retry policy: again
// while it fails with IsRetryable, up to TxAttempts times, after a jittered pause that
// ends with ctx. It is for stores that begin their transactions themselves (a group
// commit over savepoints, transactions on prepared statements); the others call InTx.
func (db *DB) Retry(ctx context.Context, attempt func() error) error {
	var err error
	for n := 1; ; n++ {
		if err = attempt(); err == nil || !IsRetryable(err) || n == TxAttempts {
			return err
		}
		if db.onRetry != nil {
			db.onRetry(n, err)
		}
		t := time.NewTimer(txBackoff(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("transaction given up after %d attempts: %w (last attempt: %w)", n, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// txBackoff is the pause after the nth failed attempt: base·2^(n-1) capped at the max,
// of which a random part up to a half is skipped.
func txBackoff(n int) time.Duration {
	d := txBackoffBase << min(n-1, 16)
	d = min(d, txBackoffMax)
	return d - rand.N(d/2+1)
}

func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// IsRetryable reports a transaction that lost a lock race and may simply run again from
// the start: a MySQL deadlock (1213: the server rolled it back) or lock wait timeout
// (1205), SQLite busy or locked (the primary result code, once busy_timeout has run out).
func IsRetryable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}

// Int64s reads a result of one integer column, such as a list of ids, and closes rows.
func Int64s(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("scan id: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read ids: %w", err)
	}
	return out, nil
}

// Placeholders returns "?, ?, ?" with n marks, for IN lists; both dialects use "?".
func Placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// PaddedIn returns the placeholders and the arguments of an IN list of vals padded to the
// next power of two by repeating the last value, which matches nothing more: a statement
// with an IN list then has a dozen shapes whatever the lengths, so that a few prepared
// statements serve every call (parsing a statement anew was the largest cost of such
// lookups on SQLite). The arguments have room for extra more, which the caller appends
// (values after the list). vals must not be empty.
func PaddedIn[T any](vals []T, extra int) (string, []any) {
	n := 1
	for n < len(vals) {
		n *= 2
	}
	args := make([]any, n, n+extra)
	for i := range args {
		args[i] = vals[min(i, len(vals)-1)]
	}
	return Placeholders(n), args
}

// Int64Args turns ids into query arguments.
func Int64Args(ids []int64) []any {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return args
}
