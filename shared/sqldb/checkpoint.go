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
// the frames the checkpointer has not copied yet and two fsyncs: with a checkpoint every
// 100 ms, 25–40 ms every 3.5–4.5 s at 2,000 msg/s on a history of 300,000 messages, which
// made the worst second's p99 30 ms against 5 ms for the rest (BenchmarkWriterAtFixedRate
// in chat's store). So, as the log nears the backstop, the checkpointer runs its
// checkpoints back to back (sprint), each copying and syncing the little that came since
// the one before; once the log is past the backstop it pauses (yieldToWriter), so that the
// writer's next commit, whose own checkpoint copies nothing when it finds the checkpoint
// lock taken, finds it free and the log all but copied: it rewinds the log for a few
// milliseconds (that benchmark: the worst second's p99 6 ms, the largest latency 13 ms
// against 37). nextCheckpoint keeps the sprint to a log that is being filled and copied.
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
	// sprintFromPages is the log size from which the checkpoints run back to back, a
	// sprintEvery apart, while they find frames to copy.
	sprintFromPages = autoCheckpointPages * 3 / 4
	sprintEvery     = time.Millisecond
	// yieldToWriter is the pause once the log is past the backstop: long enough for a
	// busy writer to commit (and checkpoint) in it, short enough that little piles up.
	yieldToWriter = 10 * time.Millisecond
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
		wait := time.NewTimer(checkpointEvery)
		defer wait.Stop()
		var last walState
		for {
			select {
			case <-ctx.Done():
				return
			case <-wait.C:
			}
			now := checkpointOnce(ctx, db)
			wait.Reset(nextCheckpoint(last, now))
			last = now
		}
	}(c.done)
}

// walState is what a passive checkpoint reports: the log's size in pages and how many of
// them are copied into the database file.
type walState struct{ logPages, copiedPages int }

// checkpointOnce runs one passive checkpoint and returns what it reports (zeros when it
// failed: the database busy or closing, retried at the next tick; the connections' own
// threshold is the backstop if it keeps failing).
func checkpointOnce(ctx context.Context, db *DB) walState {
	cctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	var busy int
	var st walState
	if err := db.QueryRowContext(cctx, CheckpointSQL).Scan(&busy, &st.logPages, &st.copiedPages); err != nil {
		return walState{}
	}
	return st
}

// nextCheckpoint returns the wait before the next checkpoint, given what the one before
// (last) and the last one (now) reported: back to back near the backstop while frames come
// and get copied, a pause past it for the writer's own checkpoint (see the top of this
// file), else the usual period. The usual period too for a log nobody appends to (the same
// size, copied to its end), however large, and for one a reader holds back (nothing more
// copied while frames wait): checkpoints back to back would only spin.
func nextCheckpoint(last, now walState) time.Duration {
	switch {
	case now.logPages == last.logPages && now.copiedPages >= now.logPages:
		return checkpointEvery // idle
	case now.logPages >= last.logPages && now.copiedPages == last.copiedPages && now.copiedPages < now.logPages:
		return checkpointEvery // held back
	case now.logPages >= autoCheckpointPages:
		return yieldToWriter
	case now.logPages >= sprintFromPages:
		return sprintEvery
	}
	return checkpointEvery
}

// stop ends the running checkpoints and waits for them. Called with checkpointers locked.
func (c *checkpointer) stop() {
	c.cancel()
	<-c.done
}
