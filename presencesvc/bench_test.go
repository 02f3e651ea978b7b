package presencesvc

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

var backends = []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL}

// BenchmarkTransitions measures online/offline transitions per second through the RPC:
// each operation is a Connect that makes a user online and the Disconnect that makes them
// offline again, from parallel clients. Each transition is announced to 20 contacts, all
// online on edge "c", so each one appends a PRESENCE_EVENT to their 20 histories in the
// user event log (in memory). The clock stops only once every event has been appended
// (announcements leave after the RPC returns), so the figure counts complete transitions:
// committed, answered and announced.
func BenchmarkTransitions(b *testing.B) {
	for _, backend := range backends {
		b.Run(string(backend), func(b *testing.B) {
			var batches, announced atomic.Int64
			h := newHarness(b, dbtest.NewURL(b, backend), func(o *Options) {
				o.onAnnounced = func(n int) {
					batches.Add(1)
					announced.Add(int64(n))
				}
			})
			h.register(b, "e1")
			h.register(b, "c")
			contacts := make([]int64, 20)
			for i := range contacts {
				contacts[i] = int64(900_000 + i)
				h.connect(b, "c", contacts[i], fmt.Sprintf("contact-%d", i))
			}
			h.chat.fallback = contacts // after their connects: those announce nothing
			var events atomic.Int64
			eventsDone := make(chan struct{}, 1)
			var wantEvents atomic.Int64
			wantEvents.Store(-1)
			h.rec.setSeen(func(ev *presencev1.StreamEventsResponse) {
				if ev.GetPresence() == nil {
					b.Errorf("unexpected event: %v", ev)
					return
				}
				if got, want := len(ev.GetUserIds()), len(contacts); got != want {
					b.Errorf("event for %d contacts, want %d", got, want)
				}
				if events.Add(1) == wantEvents.Load() {
					eventsDone <- struct{}{}
				}
			})
			waitEvents := func(want int64) {
				wantEvents.Store(want)
				if events.Load() >= want {
					return
				}
				select {
				case <-eventsDone:
				case <-time.After(30 * time.Second):
					b.Fatalf("events published = %d, want %d", events.Load(), want)
				}
			}
			var next atomic.Int64
			var transitions atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			events.Store(0)
			batches.Store(0)
			announced.Store(0)
			start, startCPU := time.Now(), processCPU()
			b.RunParallel(func(pb *testing.PB) {
				user := next.Add(1)
				for i := 0; pb.Next(); i++ {
					conn := fmt.Sprintf("u%d-%d", user, i)
					if h.connect(b, "e1", user, conn) {
						transitions.Add(1)
					}
					if h.disconnect(b, "e1", user, conn) {
						transitions.Add(1)
					}
				}
			})
			if got, want := transitions.Load(), int64(2*b.N); got != want {
				b.Fatalf("transitions = %d, want %d", got, want)
			}
			waitEvents(transitions.Load())
			elapsed, cpu := time.Since(start), processCPU()-startCPU
			if got, want := events.Load(), transitions.Load(); got != want {
				b.Fatalf("events appended = %d, want %d", got, want)
			}
			b.ReportMetric(float64(transitions.Load())/elapsed.Seconds(), "transitions/s")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(transitions.Load()), "cpu-µs/transition")
			}
			if n := batches.Load(); n > 0 {
				b.ReportMetric(float64(announced.Load())/float64(n), "transitions/batch")
			}
		})
	}
}

// BenchmarkConnectToEvent measures the time from the Connect call of a user with 1,000
// online contacts (on four edges) to the PRESENCE_EVENT being in all their histories in the
// user event log (in memory).
func BenchmarkConnectToEvent(b *testing.B) {
	for _, backend := range backends {
		b.Run(string(backend), func(b *testing.B) {
			h := newHarness(b, dbtest.NewURL(b, backend))
			edges := []string{"f0", "f1", "f2", "f3"}
			var mu sync.Mutex
			var last time.Time
			var told, want int
			allTold := make(chan struct{}, 1)
			for _, e := range edges {
				h.register(b, e)
			}
			h.rec.setSeen(func(ev *presencev1.StreamEventsResponse) {
				if !ev.GetPresence().GetIsOnline() {
					return
				}
				mu.Lock()
				last = time.Now()
				told += len(ev.GetUserIds())
				if told == want {
					allTold <- struct{}{}
				}
				mu.Unlock()
			})
			contacts := connectContacts(b, h, edges, 1000)
			h.svc.Flush() // the contacts' own announcements (they have none to tell)
			h.chat.setContacts(alice, contacts...)
			h.register(b, "e1")
			ctx := context.Background()
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				conn := fmt.Sprintf("a-%d", i)
				mu.Lock()
				told, want = 0, len(contacts)
				mu.Unlock()
				start := time.Now()
				res, err := h.client.Connect(ctx, connect.NewRequest(&presencev1.ConnectRequest{EdgeId: "e1", UserId: alice, ConnectionId: conn}))
				if err != nil || !res.Msg.GetBecameOnline() {
					b.Fatalf("Connect: %v, became_online %v", err, res.Msg.GetBecameOnline())
				}
				// The event leaves just after Connect returns: wait for it.
				select {
				case <-allTold:
				case <-time.After(10 * time.Second):
					mu.Lock()
					defer mu.Unlock()
					b.Fatalf("told %d contacts, want %d", told, len(contacts))
				}
				mu.Lock()
				total += last.Sub(start)
				mu.Unlock()
				b.StopTimer()
				h.disconnect(b, "e1", alice, conn)
				// Let the user_offline announcement go out before the next Connect, as
				// the synchronous announcer did, so it is not counted in that one's time.
				h.svc.Flush()
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-to-event")
		})
	}
}
