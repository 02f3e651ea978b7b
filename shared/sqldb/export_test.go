package sqldb

// SetOnRetry makes db tell f of every attempt InTx or Retry runs again.
func SetOnRetry(db *DB, f func(attempt int, err error)) { db.onRetry = f }

// StopCheckpointer takes db out of its SQLite file's checkpointer (a no-op with MySQL),
// for tests of the pool itself: the checkpointer takes a pooled connection every
// checkpointEvery.
func StopCheckpointer(db *DB) { leaveCheckpointer(db) }
