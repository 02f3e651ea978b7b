package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// BenchmarkStoreTransitions measures the store alone: a Connect that makes a user online
// and the Disconnect that makes them offline, from parallel goroutines.
func BenchmarkStoreTransitions(b *testing.B) {
	for _, backend := range []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL} {
		b.Run(string(backend), func(b *testing.B) {
			ctx := context.Background()
			db := dbtest.Open(b, backend)
			if err := Migrate(ctx, db); err != nil {
				b.Fatal(err)
			}
			s, err := New(ctx, db)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			now := time.Now().UnixMilli()
			if err := s.StartLease(ctx, "e1", now+time.Hour.Milliseconds()); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				user := next.Add(1)
				for i := 0; pb.Next(); i++ {
					conn := fmt.Sprintf("u%d-%d", user, i)
					if t, err := s.Connect(ctx, "e1", user, conn, now); err != nil || !t.BecameOnline() {
						b.Errorf("Connect: %v %+v", err, t)
						return
					}
					if t, err := s.Disconnect(ctx, "e1", user, conn, now); err != nil || !t.BecameOffline() {
						b.Errorf("Disconnect: %v %+v", err, t)
						return
					}
				}
			})
			b.ReportMetric(float64(2*b.N)/time.Since(start).Seconds(), "transitions/s")
		})
	}
}
