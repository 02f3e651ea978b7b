package store

import (
	"context"
	"database/sql"
)

// inTx runs fn in a transaction, committing when it returns nil. On MySQL the transaction
// runs at READ COMMITTED: the section rewrites (DELETE by user, then INSERT) of different
// users would otherwise take gap locks on the shared UserId index and deadlock each other
// at REPEATABLE READ. Each transaction locks its user's row first, so what it reads of that
// user cannot change under it. A deadlock or lock-wait timeout still reported by MySQL
// rolls back the whole transaction, which is then run again from the start.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.db.InTxRetry(ctx, fn)
}
