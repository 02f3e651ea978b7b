package store

import (
	"context"
	"database/sql"
	"math/bits"

	"github.com/charla/charla/shared/sqldb"
)

// maxIn bounds the ids of one IN list; longer lists are split.
const maxIn = 512

// maxInsertRows bounds the rows of one multi-row INSERT; larger batches use several.
const maxInsertRows = 32

// txExec runs a cached statement in tx.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, err := s.stmts.Get(ctx, s.db, query)
	if err != nil {
		return nil, err
	}
	// The tx-bound copy is closed with the transaction; the cached statement stays.
	return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

// txQuery runs a cached statement in tx.
func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmts.Get(ctx, s.db, query)
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
