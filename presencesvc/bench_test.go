package presencesvc

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

var backends = []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL}

// BenchmarkTransitions measures online/offline transitions per second through the RPC:
// each operation is a Connect that makes a user online and the Disconnect that makes them
// offline again (two transitions, each announced to 20 contacts who are offline, so each
// costs one ListContactIds call and one route query), from parallel clients.
func BenchmarkTransitions(b *testing.B) {
	for _, backend := range backends {
		b.Run(string(backend), func(b *testing.B) {
			h := newHarness(b, dbtest.NewURL(b, backend))
			h.register(b, "e1")
			h.chat.fallback = make([]int64, 20)
			for i := range h.chat.fallback {
				h.chat.fallback[i] = int64(900_000 + i)
			}
			var next atomic.Int64
			var transitions atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			start := time.Now()
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
			elapsed := time.Since(start)
			if got, want := transitions.Load(), int64(2*b.N); got != want {
				b.Fatalf("transitions = %d, want %d", got, want)
			}
			b.ReportMetric(float64(transitions.Load())/elapsed.Seconds(), "transitions/s")
		})
	}
}

// BenchmarkConnectToEvent measures the time from the Connect call of a user with 1,000
// online contacts (on four edges) to the PRESENCE_EVENT reaching the last of those edges'
// subjects on the bus.
func BenchmarkConnectToEvent(b *testing.B) {
	for _, backend := range backends {
		b.Run(string(backend), func(b *testing.B) {
			h := newHarness(b, dbtest.NewURL(b, backend))
			edges := []string{"f0", "f1", "f2", "f3"}
			var mu sync.Mutex
			var last time.Time
			var told int
			for _, e := range edges {
				h.register(b, e)
				sub, err := h.bus.Subscribe(fanout.Subject(EventService, e), func(data []byte) {
					ev := new(presencev1.StreamEventsResponse)
					if err := proto.Unmarshal(data, ev); err != nil || !ev.GetPresence().GetIsOnline() {
						return
					}
					mu.Lock()
					last = time.Now()
					told += len(ev.GetUserIds())
					mu.Unlock()
				})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = sub.Unsubscribe() })
			}
			contacts := connectContacts(b, h, edges, 1000)
			h.chat.setContacts(alice, contacts...)
			h.register(b, "e1")
			ctx := context.Background()
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				conn := fmt.Sprintf("a-%d", i)
				mu.Lock()
				told = 0
				mu.Unlock()
				start := time.Now()
				res, err := h.client.Connect(ctx, connect.NewRequest(&presencev1.ConnectRequest{EdgeId: "e1", UserId: alice, ConnectionId: conn}))
				if err != nil || !res.Msg.GetBecameOnline() {
					b.Fatalf("Connect: %v, became_online %v", err, res.Msg.GetBecameOnline())
				}
				mu.Lock()
				if told != len(contacts) {
					b.Fatalf("told %d contacts, want %d", told, len(contacts))
				}
				total += last.Sub(start)
				mu.Unlock()
				b.StopTimer()
				h.disconnect(b, "e1", alice, conn)
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-to-event")
		})
	}
}
