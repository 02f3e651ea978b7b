// Package retention prunes notifications past their maximum age or beyond the newest
// MaxPerUser of each user, in bounded batches, from one background goroutine.
//
// Counting every user's notifications on every run would read the whole table, so the
// pruner does that once, on its first run, and afterwards checks only the users it was
// told about with Touch (those that received a notification through this process since the
// last run). Every process that creates notifications runs a pruner, so together they see
// every user. Touch is safe for concurrent use; PruneOnce and Run must not overlap.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults, as documented for NOTIFY_RETENTION_MAX_AGE and NOTIFY_RETENTION_MAX_PER_USER.
const (
	DefaultMaxAge     = 90 * 24 * time.Hour
	DefaultMaxPerUser = 1000
	DefaultInterval   = 5 * time.Minute
	DefaultBatch      = 500
	// DefaultPause is the rest between two batches, so that writers waiting for the
	// database (SQLite has one writer) get their turn during a long prune.
	DefaultPause = 10 * time.Millisecond
	// maxDirty bounds the set of touched users; past it the next run rescans everything.
	maxDirty = 100_000
)

// Store is what the pruner needs from the notification store.
type Store interface {
	// DeleteOlderThan deletes at most batch notifications created before cutoff (Unix ms).
	DeleteOlderThan(ctx context.Context, cutoff int64, batch int) (int64, error)
	// UsersOver returns the users holding more than keep notifications.
	UsersOver(ctx context.Context, keep int) ([]int64, error)
	// DeleteExcess deletes at most batch of a user's notifications beyond the newest keep.
	DeleteExcess(ctx context.Context, userID int64, keep, batch int) (int64, error)
}

// Config sets the limits; zero values take the defaults.
type Config struct {
	// MaxAge is how long a notification is kept.
	MaxAge time.Duration
	// MaxPerUser is how many notifications a user keeps, newest first.
	MaxPerUser int
	// Interval is the time between runs.
	Interval time.Duration
	// Batch bounds the rows one DELETE statement removes.
	Batch int
	// Pause is the rest between two full batches.
	Pause time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Result counts what one run deleted.
type Result struct {
	// Aged is how many were deleted for being older than MaxAge.
	Aged int64
	// Excess is how many were deleted for being beyond MaxPerUser.
	Excess int64
}

// Pruner deletes old and excess notifications.
type Pruner struct {
	store Store
	cfg   Config
	log   *slog.Logger

	mu       sync.Mutex
	dirty    map[int64]struct{}
	fullScan bool // the next run counts every user
}

// New returns a pruner; log may be nil.
func New(store Store, cfg Config, log *slog.Logger) *Pruner {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxPerUser <= 0 {
		cfg.MaxPerUser = DefaultMaxPerUser
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Pause <= 0 {
		cfg.Pause = DefaultPause
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pruner{store: store, cfg: cfg, log: log, dirty: make(map[int64]struct{}), fullScan: true}
}

// Touch records that userID received a notification, so the next run checks their count.
func (p *Pruner) Touch(userID int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fullScan {
		return
	}
	if len(p.dirty) >= maxDirty {
		p.dirty = make(map[int64]struct{})
		p.fullScan = true
		return
	}
	p.dirty[userID] = struct{}{}
}

// Run prunes once right away and then every Interval until ctx ends.
func (p *Pruner) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		if res, err := p.PruneOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Error("prune notifications", "err", err)
		} else if res.Aged+res.Excess > 0 {
			p.log.Info("pruned notifications", "aged", res.Aged, "excess", res.Excess)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PruneOnce deletes every notification older than MaxAge, then every user's notifications
// beyond the newest MaxPerUser, at most Batch rows per statement.
func (p *Pruner) PruneOnce(ctx context.Context) (Result, error) {
	var res Result
	cutoff := p.cfg.Now().Add(-p.cfg.MaxAge).UnixMilli()
	for {
		n, err := p.store.DeleteOlderThan(ctx, cutoff, p.cfg.Batch)
		res.Aged += n
		if err != nil {
			return res, err
		}
		if n < int64(p.cfg.Batch) {
			break
		}
		if err := p.rest(ctx); err != nil {
			return res, err
		}
	}

	p.mu.Lock()
	fullScan, dirty := p.fullScan, p.dirty
	p.fullScan, p.dirty = false, make(map[int64]struct{})
	p.mu.Unlock()
	var users []int64
	if fullScan {
		var err error
		if users, err = p.store.UsersOver(ctx, p.cfg.MaxPerUser); err != nil {
			p.restore(true, nil)
			return res, err
		}
	} else {
		users = make([]int64, 0, len(dirty))
		for u := range dirty {
			users = append(users, u)
		}
	}
	for i, u := range users {
		for {
			n, err := p.store.DeleteExcess(ctx, u, p.cfg.MaxPerUser, p.cfg.Batch)
			res.Excess += n
			if err != nil {
				// Check the users not done yet on the next run.
				p.restore(fullScan, users[i:])
				return res, fmt.Errorf("prune notifications of user %d: %w", u, err)
			}
			if n < int64(p.cfg.Batch) {
				break
			}
			if err := p.rest(ctx); err != nil {
				p.restore(fullScan, users[i:])
				return res, err
			}
		}
	}
	return res, nil
}

// rest waits Pause, or until ctx ends.
func (p *Pruner) rest(ctx context.Context) error {
	t := time.NewTimer(p.cfg.Pause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// restore puts back work a failed run did not finish.
func (p *Pruner) restore(fullScan bool, users []int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fullScan {
		p.fullScan = true
		p.dirty = make(map[int64]struct{})
		return
	}
	for _, u := range users {
		if len(p.dirty) >= maxDirty {
			p.fullScan = true
			p.dirty = make(map[int64]struct{})
			return
		}
		p.dirty[u] = struct{}{}
	}
}
