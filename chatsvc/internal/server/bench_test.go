package server

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// BenchmarkSend measures persisted sends per second through the RPC: HTTP/2 + Connect,
// contact check, the group-commit writer (acknowledged after commit) and the event
// publication, with many concurrent senders (b.RunParallel) over 50 chats.
func BenchmarkSend(b *testing.B) {
	for _, backend := range []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL} {
		b.Run(string(backend), func(b *testing.B) {
			e := newEnv(b, dbtest.NewURL(b, backend), 100)
			const pairs = 50
			for i := int64(0); i < pairs; i++ {
				e.contact(b, 2*i+1, 2*i+2)
				e.online.set(2*i+1, true)
				e.online.set(2*i+2, true)
			}
			e.drain()
			var next atomic.Int64
			b.SetParallelism(32) // concurrent senders per core
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					n := next.Add(1)
					from := n%(2*pairs) + 1
					to := from + 1
					if from%2 == 0 {
						to = from - 1
					}
					_, err := e.client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{
						UserId: from, ToUserId: to, Text: "benchmark message", ClientMessageId: fmt.Sprintf("b%d", n),
					}))
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			elapsed := time.Since(start)
			cpu := cpuTime() - cpu0
			b.StopTimer()
			// CPU per send (client, server and database together in this process for SQLite;
			// mysqld's share is not counted) says what 2 idle cores could do, whatever the
			// load of the shared machine while it ran.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			if batches, msgs := e.srv.WriterStats(); batches > 0 {
				b.ReportMetric(float64(msgs)/float64(batches), "msgs/commit")
			}
		})
	}
}

// cpuTime returns the user+system CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
