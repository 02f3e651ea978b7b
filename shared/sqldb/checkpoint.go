package sqldb

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// SQLite in WAL mode appends every commit to the write-ahead log; a checkpoint copies the
// log back into the database file and syncs it. By default the connection whose commit
// crosses 1,000 log pages runs that checkpoint inside its own Commit, so now and then one
// commit (in Charla the chat service's group commit, which every send waits for) takes an
// fsync or two longer: a latency spike for every message queued behind it. Open turns the
// automatic checkpoint off (wal_autocheckpoint(0)) and runs a passive checkpoint on a
// pool connection every CheckpointInterval instead: passive checkpoints never block the
// writer or readers, so commits only append to the log. Under steady load a passive
// checkpoint never finds a moment without readers to start the log over, so it would grow
// without end: once it holds restartFrames pages, all of them copied, a RESTART
// checkpoint starts it over, blocking the writer only while readers finish with it (no
// copying or syncing is left to do by then).

// CheckpointInterval is how often the background checkpointer of a SQLite database runs.
const CheckpointInterval = 250 * time.Millisecond

// restartFrames is the size of the log, in pages (4 KiB), past which the checkpointer
// starts it over once it is fully copied.
const restartFrames = 4096

// checkpointTimeout bounds one checkpoint.
const checkpointTimeout = 30 * time.Second

// checkpointer runs passive WAL checkpoints until stopped.
type checkpointer struct {
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// startCheckpointer starts db's background checkpointer; Close stops it.
func (db *DB) startCheckpointer(every time.Duration) {
	c := &checkpointer{stop: make(chan struct{}), done: make(chan struct{})}
	db.ckpt = c
	go func() {
		defer close(c.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
			}
			// A failure (the database busy or closing) only delays the copy to the next
			// tick: the log keeps every commit meanwhile.
			remaining, frames, err := db.checkpoint(context.Background(), "PASSIVE")
			if err == nil && remaining == 0 && frames >= restartFrames {
				_, _, _ = db.checkpoint(context.Background(), "RESTART")
			}
		}
	}()
}

// Checkpoint runs PRAGMA wal_checkpoint(mode) on a SQLite database ("PASSIVE", "FULL",
// "RESTART" or "TRUNCATE") and reports how many log frames remain to be copied. Other
// dialects return 0, nil.
func (db *DB) Checkpoint(ctx context.Context, mode string) (remaining int, err error) {
	remaining, _, err = db.checkpoint(ctx, mode)
	return remaining, err
}

// checkpoint is Checkpoint that also reports the log's size in frames.
func (db *DB) checkpoint(ctx context.Context, mode string) (remaining, frames int, err error) {
	if db.Dialect != SQLite {
		return 0, 0, nil
	}
	switch mode {
	case "PASSIVE", "FULL", "RESTART", "TRUNCATE":
	default:
		return 0, 0, fmt.Errorf("checkpoint mode %q: want PASSIVE, FULL, RESTART or TRUNCATE", mode)
	}
	ctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	var busy, logFrames, copied int
	if err := db.DB.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &logFrames, &copied); err != nil {
		return 0, 0, fmt.Errorf("wal checkpoint (%s): %w", mode, err)
	}
	if logFrames < 0 { // not in WAL mode
		return 0, 0, nil
	}
	return logFrames - copied, logFrames, nil
}

// Close stops the checkpointer (a SQLite database copies its whole log into the file
// once more) and closes the database.
func (db *DB) Close() error {
	if c := db.ckpt; c != nil {
		c.stopOnce.Do(func() {
			close(c.stop)
			<-c.done
			_, _ = db.Checkpoint(context.Background(), "TRUNCATE")
		})
	}
	return db.DB.Close()
}
