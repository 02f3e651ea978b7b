package store

import (
	"context"
	"database/sql"
)

// inTx runs fn in a transaction, committing when it returns nil. On MySQL the transaction
// runs at READ COMMITTED: the section rewrites (DELETE by user, then INSERT) of different
// users would otherwise take gap locks on the shared UserId index and deadlock each other
// at REPEATABLE READ. Each transaction locks its user's row first, so what it reads of that
// user cannot change under it. A transaction that lost a lock race (a deadlock, a lock wait
// timeout, a busy SQLite database) is run again from the start: the policy every store
// shares, sqldb.DB.InTx.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.db.InTx(ctx, fn)
}
