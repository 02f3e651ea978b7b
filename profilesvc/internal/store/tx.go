package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"

	"github.com/charla/charla/shared/sqldb"
)

// maxTxAttempts bounds the retries of a transaction MySQL chose as a deadlock victim.
const maxTxAttempts = 4

// inTx runs fn in a transaction, committing when it returns nil. On MySQL the transaction
// runs at READ COMMITTED: the section rewrites (DELETE by user, then INSERT) of different
// users would otherwise take gap locks on the shared UserId index and deadlock each other
// at REPEATABLE READ. Each transaction locks its user's row first, so what it reads of that
// user cannot change under it. A deadlock or lock-wait timeout still reported by MySQL
// rolls back the whole transaction, which is then run again from the start.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var opts *sql.TxOptions
	if s.db.Dialect == sqldb.MySQL {
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	for attempt := 1; ; attempt++ {
		err := s.runTx(ctx, opts, fn)
		if err == nil || attempt == maxTxAttempts || !retryable(err) {
			return err
		}
	}
}

func (s *Store) runTx(ctx context.Context, opts *sql.TxOptions, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, opts)
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

// retryable reports a MySQL deadlock (1213) or lock wait timeout (1205): the server rolled
// the transaction back and it may simply be run again.
func retryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}
