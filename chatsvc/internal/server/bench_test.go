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

// benchPairs is how many chats the benchmarks spread their senders over.
const benchPairs = 50

// benchEnv is a server with benchPairs accepted, online pairs (users 2i+1 and 2i+2).
func benchEnv(b *testing.B, backend sqldb.Dialect) *env {
	b.Helper()
	e := newEnv(b, dbtest.NewURL(b, backend), 2*benchPairs)
	for i := int64(0); i < benchPairs; i++ {
		e.contact(b, 2*i+1, 2*i+2)
		e.online.set(2*i+1, true)
		e.online.set(2*i+2, true)
	}
	e.drain()
	return e
}

// benchSender returns the n-th send's sender and recipient.
func benchSender(n int64) (from, to int64) {
	from = n%(2*benchPairs) + 1
	to = from + 1
	if from%2 == 0 {
		to = from - 1
	}
	return from, to
}

// runParallel runs op concurrently (32 callers per core) b.N times and reports messages per
// second, CPU per message and the writer's batch size besides ns/op and allocs/op.
func runParallel(b *testing.B, e *env, op func(ctx context.Context, n int64) error) {
	b.Helper()
	var next atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	batches0, msgs0 := e.srv.WriterStats()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := op(ctx, next.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	// CPU per message (client, server and database together in this process for SQLite;
	// mysqld's share is not counted) says what 2 idle cores could do, whatever the load of
	// the shared machine while it ran.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if batches, msgs := e.srv.WriterStats(); batches > batches0 {
		b.ReportMetric(float64(msgs-msgs0)/float64(batches-batches0), "ops/commit")
	}
}

// BenchmarkSend measures persisted sends per second through the RPC: HTTP/2 + Connect,
// contact check, the group-commit writer (acknowledged after commit) and the event
// publication, with many concurrent senders over 50 chats.
func BenchmarkSend(b *testing.B) {
	for _, backend := range []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL} {
		b.Run(string(backend), func(b *testing.B) {
			e := benchEnv(b, backend)
			runParallel(b, e, func(ctx context.Context, n int64) error {
				from, to := benchSender(n)
				_, err := e.client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{
					UserId: from, ToUserId: to, Text: "benchmark message", ClientMessageId: fmt.Sprintf("b%d", n),
				}))
				return err
			})
		})
	}
}

// BenchmarkSendDeliver measures a message's whole server-side life up to "delivered": the
// send as in BenchmarkSend, then the recipient's edge reporting it written to a socket
// (MarkDelivered, one receipt per call: the edge's worst case) and the MESSAGE_STATUS_UPDATE
// to the sender. One op is one message sent and delivered.
func BenchmarkSendDeliver(b *testing.B) {
	for _, backend := range []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL} {
		b.Run(string(backend), func(b *testing.B) {
			e := benchEnv(b, backend)
			runParallel(b, e, func(ctx context.Context, n int64) error {
				from, to := benchSender(n)
				res, err := e.client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{
					UserId: from, ToUserId: to, Text: "benchmark message", ClientMessageId: fmt.Sprintf("b%d", n),
				}))
				if err != nil {
					return err
				}
				d, err := e.client.MarkDelivered(ctx, connect.NewRequest(&chatv1.MarkDeliveredRequest{
					UserId: to, MessageIds: []int64{res.Msg.GetMessageId()},
				}))
				if err != nil {
					return err
				}
				if d.Msg.GetUpdated() != 1 {
					return fmt.Errorf("message %d: delivered updated %d, want 1", res.Msg.GetMessageId(), d.Msg.GetUpdated())
				}
				return nil
			})
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
