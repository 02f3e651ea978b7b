package sqldb

// SetOnRetry makes db tell f of every attempt InTx or Retry runs again.
func SetOnRetry(db *DB, f func(attempt int, err error)) { db.onRetry = f }
