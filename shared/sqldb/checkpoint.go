package sqldb

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// SQLite's write-ahead log is copied back into the database file by checkpoints. By
// default the connection that commits the transaction which fills the log past 1,000 pages
// runs the checkpoint itself, inside its COMMIT: under load that is chat's message writer,
// and the commit that checkpoints takes 10–50 ms instead of well under one, holding up
// every message queued behind it (the p99 of a busy server). So the connections' own
// threshold is raised to a backstop (autoCheckpointPages) and one checkpointer goroutine
// per database file runs passive checkpoints every checkpointEvery on a pooled connection.
// A passive checkpoint never waits for the writer or readers: it copies what it can, and
// the writer goes on appending meanwhile. The log is rewound from its start once a
// checkpoint has copied all of it; journal_size_limit trims the file back afterwards.
//
// Under a steady stream of commits a passive checkpoint rarely leaves the log fully copied
// when the next write begins, so the log mostly grows to the backstop and the writer's
// commit that reaches it checkpoints what is left and rewinds it. That commit waits for
// the frames the checkpointer has not copied yet and two fsyncs: the shorter the period
// the fewer frames (10–23 ms at 100 ms against 27–54 ms at 500 ms, after a 10,000 msg/s
// overload on this machine's disk), and the larger the backstop the rarer such commits
// (every 3 s at 2,000 msg/s after that overload with 32,768 pages; every 0.8 s with 8,192).
const (
	// checkpointEvery is the checkpointer's period: at 2,000 msg/s the log grows by up to
	// 10,000 pages a second, so each checkpoint copies at most a few MiB.
	checkpointEvery = 100 * time.Millisecond
	// autoCheckpointPages is the connections' own threshold (pages of 4 KiB: 128 MiB),
	// the backstop described above.
	autoCheckpointPages = 32768
	// journalSizeLimit is the size the log file is trimmed to when it is rewound: above
	// the backstop, so a log that reached it is reused rather than cut and grown again.
	journalSizeLimit = 160 << 20
	// checkpointTimeout bounds one checkpoint, so Close never waits longer for it.
	checkpointTimeout = 10 * time.Second
)

// CheckpointSQL is the checkpointer's statement (test query counters leave it out: it runs
// on a timer, not for any call).
const CheckpointSQL = "PRAGMA wal_checkpoint(PASSIVE)"

// checkpointers holds the checkpointer of every SQLite file open in this process. In one
// process the four services open the same file, each with its own pool; a checkpointer
// each would collide (a checkpoint that finds another running copies nothing), so there is
// one per file, running on one of the DBs that opened it and moving to another when that
// one closes.
var checkpointers = struct {
	sync.Mutex
	byFile map[string]*checkpointer
}{byFile: map[string]*checkpointer{}}

// checkpointer runs passive checkpoints of one SQLite file until its last DB closes.
type checkpointer struct {
	dbs    []*DB // the open DBs of the file; the checkpoints run on dbs[0]
	cancel context.CancelFunc
	done   chan struct{}
}

// fileKey returns the key of a SQLite path in checkpointers: the absolute path.
func fileKey(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// joinCheckpointer registers db, open on the SQLite file at path, with the file's
// checkpointer, starting it if db is the file's first open DB.
func joinCheckpointer(db *DB, path string) {
	file := fileKey(path)
	checkpointers.Lock()
	defer checkpointers.Unlock()
	c := checkpointers.byFile[file]
	if c == nil {
		c = &checkpointer{}
		checkpointers.byFile[file] = c
	}
	db.checkpointFile = file
	c.dbs = append(c.dbs, db)
	if len(c.dbs) == 1 {
		c.start()
	}
}

// leaveCheckpointer unregisters db from its file's checkpointer: the checkpoints move to
// another open DB of the file, or stop with the last one. It returns once no checkpoint
// runs on db.
func leaveCheckpointer(db *DB) {
	if db.checkpointFile == "" {
		return
	}
	checkpointers.Lock()
	defer checkpointers.Unlock()
	c := checkpointers.byFile[db.checkpointFile]
	if c == nil {
		return // left already, the file's last DB
	}
	i := slices.Index(c.dbs, db)
	if i < 0 {
		return // left already
	}
	if i == 0 {
		c.stop()
	}
	c.dbs = slices.Delete(c.dbs, i, i+1)
	switch {
	case len(c.dbs) == 0:
		delete(checkpointers.byFile, db.checkpointFile)
	case i == 0:
		c.start()
	}
}

// start runs the checkpoints on c.dbs[0]. Called with checkpointers locked.
func (c *checkpointer) start() {
	db := c.dbs[0]
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
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
	}(c.done)
}

// stop ends the running checkpoints and waits for them. Called with checkpointers locked.
func (c *checkpointer) stop() {
	c.cancel()
	<-c.done
}
