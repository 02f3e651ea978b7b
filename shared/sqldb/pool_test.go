package sqldb_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// TestPoolShrinksAfterBurst shows the pool bounded: a burst of concurrent transactions (the
// requests that queued during an outage) opens connections up to MaxOpen, at most MaxIdle
// of them stay once it is over, and the idle ones close after MaxIdleTime, taking their
// sockets and goroutines with them.
func TestPoolShrinksAfterBurst(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := dbtest.OpenURL(t, url)
		pool := sqldb.PoolFor(db.Dialect)
		if pool.MaxIdle <= 0 || pool.MaxIdle > pool.MaxOpen || pool.MaxIdleTime <= 0 || pool.MaxLifetime <= 0 ||
			db.Dialect == sqldb.MySQL && pool.MaxIdle >= pool.MaxOpen {
			t.Fatalf("PoolFor(%s) = %+v, want 0 < MaxIdle ≤ MaxOpen (< on MySQL) and both timeouts set", db.Dialect, pool)
		}
		// The SQLite checkpointer takes a pooled connection every 100 ms, more often than
		// database/sql closes idle ones (once a second): stop it, this is about the pool.
		sqldb.StopCheckpointer(db)
		db.SetMaxIdleConns(0) // start from nothing
		db.SetPool(pool)
		baseline := runtime.NumGoroutine()

		var held, release sync.WaitGroup
		held.Add(pool.MaxOpen)
		release.Add(1)
		errs := make(chan error, pool.MaxOpen)
		for range pool.MaxOpen {
			go func() {
				conn, err := db.Conn(ctx)
				held.Done()
				if err != nil {
					errs <- err
					return
				}
				defer conn.Close()
				release.Wait()
				errs <- conn.PingContext(ctx)
			}()
		}
		held.Wait()
		if got := db.Stats().OpenConnections; got != pool.MaxOpen {
			t.Errorf("open connections during the burst = %d, want %d", got, pool.MaxOpen)
		}
		release.Done()
		for range pool.MaxOpen {
			if err := <-errs; err != nil {
				t.Fatalf("burst: %v", err)
			}
		}
		if got := db.Stats().Idle; got > pool.MaxIdle {
			t.Errorf("idle connections after the burst = %d, want at most %d", got, pool.MaxIdle)
		}

		// The idle ones go after MaxIdleTime (shortened here; database/sql checks every 1 s).
		pool.MaxIdleTime = 50 * time.Millisecond
		db.SetPool(pool)
		deadline := time.Now().Add(30 * time.Second) // a bound on the wait, not a speed check
		for db.Stats().OpenConnections > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if got := db.Stats().OpenConnections; got != 0 {
			t.Fatalf("open connections long after the burst = %d, want 0", got)
		}
		// Each MySQL connection had a driver goroutine; none is left over. (Other tests
		// run in parallel, so allow for their goroutines coming and going.)
		for runtime.NumGoroutine() > baseline+4 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if got := runtime.NumGoroutine(); got > baseline+4 {
			t.Errorf("goroutines after the pool emptied = %d, want about %d", got, baseline)
		}
	})
}
