package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"strings"
	"sync"

	"github.com/charla/charla/shared/sqldb"
)

// maxIn bounds the ids of one IN list; longer lists are split.
const maxIn = 512

// maxInsertRows bounds the rows of one multi-row INSERT; larger batches use several.
const maxInsertRows = 32

// stmtCache holds the statements the writer runs once per batch, prepared once per
// connection (database/sql prepares a *sql.Stmt lazily on each connection it runs on and
// keeps it there). Parsing a statement was a tenth of a batch's CPU on SQLite, and an
// unprepared statement with arguments costs the MySQL driver a second round trip
// (prepare, then execute). The texts are bounded by construction: IN lists are padded to
// a power of two (at most log2(maxIn)+1 shapes per statement) and multi-row INSERTs have
// at most maxInsertRows shapes, so the cache never grows past a few dozen statements.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// get returns the statement for query, preparing it on first use.
func (c *stmtCache) get(ctx context.Context, db *sqldb.DB, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", firstWords(query), err)
	}
	if c.m == nil {
		c.m = make(map[string]*sql.Stmt)
	}
	c.m[query] = st
	return st, nil
}

// close closes every cached statement.
func (c *stmtCache) close() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, q)
	}
	return errs
}

// firstWords names a statement in an error without its (long) IN list.
func firstWords(q string) string {
	if i := strings.Index(q, " WHERE"); i > 0 {
		return q[:i]
	}
	if len(q) > 60 {
		return q[:60]
	}
	return q
}

// txExec runs a cached statement in tx.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, err := s.stmts.get(ctx, s.db, query)
	if err != nil {
		return nil, err
	}
	// The tx-bound copy is closed with the transaction; the cached statement stays.
	return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

// txQuery runs a cached statement in tx.
func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmts.get(ctx, s.db, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

// paddedIn returns the placeholder list for ids padded to the next power of two (so a
// statement has few shapes), and the arguments: ids, then the last id repeated, which
// matches nothing more. len(ids) must be between 1 and maxIn.
func paddedIn(ids []int64) (string, []any) {
	n := 1
	if len(ids) > 1 {
		n = 1 << bits.Len(uint(len(ids)-1))
	}
	args := make([]any, n, n+2)
	for i := range n {
		args[i] = ids[min(i, len(ids)-1)]
	}
	return sqldb.Placeholders(n), args
}

// chunks calls fn with consecutive pieces of ids of at most size each, stopping at the
// first error.
func chunks(ids []int64, size int, fn func([]int64) error) error {
	for len(ids) > 0 {
		n := min(size, len(ids))
		if err := fn(ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}
