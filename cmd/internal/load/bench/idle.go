package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charla/charla/cmd/internal/load/client"
	"github.com/charla/charla/cmd/internal/load/provision"
)

// IdleConfig sets the idle and storm modes.
type IdleConfig struct {
	// Levels are the connection counts to hold, rising; empty skips the idle figures.
	Levels []int
	// ConnsPerUser is how many connections each user holds (1 unless set).
	ConnsPerUser int
	// Storm is how many of the held connections drop and reconnect at once; 0 skips it.
	Storm int
	// StormTimeout bounds the storm.
	StormTimeout time.Duration
}

// IdleLevel is the figure of one level.
type IdleLevel struct {
	Conns      int           // connections held
	Added      int           // handshakes made to reach this level from the previous one
	Took       time.Duration // how long those took
	PerSec     float64       // Added / Took
	Failures   int           // refused or failed attempts (retried)
	FailuresBy map[string]int
	RSSBase    int64   // server RSS before any connection
	RSS        int64   // server RSS at this level
	PerConnKiB float64 // (RSS − RSSBase) / Conns in KiB
}

// StormResult is the figure of the reconnection storm.
type StormResult struct {
	Clients     int
	Reconnected int           // clients connected again before the storm's timeout
	Took        time.Duration // from the drop until every client is connected again (or the timeout)
	Failures    int           // failed attempts along the way (retried)
	FailuresBy  map[string]int
}

// IdleResult holds the idle levels and the storm.
type IdleResult struct {
	Users     int
	Provision time.Duration
	Levels    []IdleLevel
	Storm     *StormResult
}

// RunIdle provisions users, ramps connections through the levels, then runs the storm on
// the first cfg.Storm connections, and closes everything.
func RunIdle(ctx context.Context, opts *Options, t *Target, cfg IdleConfig) (IdleResult, error) {
	var res IdleResult
	perUser := max(cfg.ConnsPerUser, 1)
	levels := slices.Clone(cfg.Levels)
	top := 0
	if len(levels) > 0 {
		top = levels[len(levels)-1]
	}
	if cfg.Storm > top {
		levels = append(levels, cfg.Storm) // reached but not reported
	}
	if len(levels) == 0 {
		return res, nil
	}
	maxConns := levels[len(levels)-1]
	res.Users = (maxConns + perUser - 1) / perUser
	start := time.Now()
	users, err := t.Prov.Users(ctx, res.Users)
	if err != nil {
		return res, fmt.Errorf("%s: provision %d users: %w", t.Name, res.Users, err)
	}
	res.Provision = time.Since(start)
	opts.logf(t, "provisioned %d users in %v", res.Users, res.Provision.Round(time.Millisecond))

	con, err := newConnector(ctx, opts, t, users[0])
	if err != nil {
		return res, err
	}
	if err := sleep(ctx, opts.Settle); err != nil {
		return res, err
	}
	base, _, err := t.Sample()
	if err != nil {
		return res, err
	}
	conns := make([]*client.Conn, maxConns)
	defer func() { closeAll(conns) }()
	held := 0
	for _, level := range levels {
		start := time.Now()
		failures, err := con.dialMany(ctx, conns, held, level, users, perUser, nil)
		took := time.Since(start)
		if err != nil {
			return res, fmt.Errorf("%s: ramp to %d connections: %w", t.Name, level, err)
		}
		added := level - held
		held = level
		if !slices.Contains(cfg.Levels, level) {
			continue
		}
		if err := sleep(ctx, opts.Settle); err != nil {
			return res, err
		}
		s, _, err := t.Sample()
		if err != nil {
			return res, err
		}
		l := IdleLevel{
			Conns: level, Added: added, Took: took, PerSec: float64(added) / took.Seconds(), Failures: failures, FailuresBy: con.takeFailures(),
			RSSBase: base.RSS, RSS: s.RSS, PerConnKiB: float64(s.RSS-base.RSS) / float64(level) / 1024,
		}
		res.Levels = append(res.Levels, l)
		opts.logf(t, "idle %d conns: %.0f handshakes/s, %.1f KiB/conn, %d failures", level, l.PerSec, l.PerConnKiB, failures)
	}
	if cfg.Storm > 0 {
		con.takeFailures()
		s := storm(ctx, con, conns[:cfg.Storm], users, perUser, cfg.StormTimeout)
		res.Storm = &s
		opts.logf(t, "storm %d clients: %d back in %v, failed attempts %v", s.Clients, s.Reconnected, s.Took.Round(time.Millisecond), s.FailuresBy)
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// storm drops conns all at once and has each reconnect at once, retrying with backoff
// until timeout; those not back by then are counted, not an error.
func storm(ctx context.Context, con *connector, conns []*client.Conn, users []provision.User, perUser int, timeout time.Duration) StormResult {
	res := StormResult{Clients: len(conns)}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	closeAll(conns)
	var failures, back atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range conns {
		conns[i] = nil
		wg.Go(func() {
			c, f, err := con.dial(ctx, i, i, users[i/perUser], nil)
			failures.Add(int64(f))
			if err == nil {
				back.Add(1)
			}
			mu.Lock()
			defer mu.Unlock()
			conns[i] = c
		})
	}
	wg.Wait()
	res.Took = time.Since(start)
	res.Failures = int(failures.Load())
	res.Reconnected = int(back.Load())
	res.FailuresBy = con.takeFailures()
	return res
}
