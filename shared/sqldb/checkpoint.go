package sqldb

import (
	"context"
	"time"
)

// SQLite's write-ahead log is copied back into the database file by checkpoints. By
// default the connection that commits the transaction which fills the log past 1,000 pages
// runs the checkpoint itself, inside its COMMIT: under load that is chat's message writer,
// and the commit that checkpoints takes 10–50 ms instead of well under one, holding up
// every message queued behind it (the p99 of a busy server). So the connections' own
// threshold is raised to a backstop (autoCheckpointPages) and a checkpointer goroutine
// per DB runs passive checkpoints every checkpointEvery on a pooled connection. A passive
// checkpoint never waits for the writer or readers: it copies what it can, and the writer
// goes on appending meanwhile. The log is rewound from its start once a checkpoint has
// copied all of it; journal_size_limit trims the file back afterwards.
const (
	// checkpointEvery is the checkpointer's period: at 2,000 msg/s the log grows by a few
	// thousand pages a second, so each checkpoint copies at most a few MiB.
	checkpointEvery = 500 * time.Millisecond
	// autoCheckpointPages is the connections' own threshold (pages of 4 KiB: 32 MiB), only
	// reached when the checkpointer falls behind (or is stopped).
	autoCheckpointPages = 8192
	// journalSizeLimit is the size the log file is trimmed to when it is rewound.
	journalSizeLimit = 64 << 20
	// checkpointTimeout bounds one checkpoint, so Close never waits longer for it.
	checkpointTimeout = 10 * time.Second
)

// CheckpointSQL is the checkpointer's statement (test query counters leave it out: it runs
// on a timer, not for any call).
const CheckpointSQL = "PRAGMA wal_checkpoint(PASSIVE)"

// checkpointer runs passive checkpoints of a SQLite database until stopped.
type checkpointer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startCheckpointer starts the checkpointer of db; stop ends it and waits for it.
func startCheckpointer(db *DB) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				cctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
				// A failure (the database busy or closing) is retried at the next tick; the
				// connections' own threshold is the backstop if it keeps failing.
				_, _ = db.ExecContext(cctx, CheckpointSQL)
				cancel()
			}
		}
	}()
	return c
}

func (c *checkpointer) stop() {
	if c == nil {
		return
	}
	c.cancel()
	<-c.done
}
