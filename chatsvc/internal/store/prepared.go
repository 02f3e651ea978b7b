package store

import (
	"context"
	"database/sql"
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
