package store

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/charla/charla/chatsvc/internal/chat"
)

// processCPU returns the process's user and system CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWriterUnderLoad measures the group commit on SQLite as chat uses it under load: 4,
// 16 or 256 senders (small or large batches) in 1,000 chats each insert a message and report the one before it delivered,
// the way a recipient's edge does. cpu-ns/op is the process's CPU per message, steadier
// than ns/op on a shared machine.
func BenchmarkWriterUnderLoad(b *testing.B) {
	for _, senders := range []int{4, 16, 256} {
		b.Run("senders="+strconv.Itoa(senders), func(b *testing.B) { benchWriterUnderLoad(b, senders) })
	}
}

func benchWriterUnderLoad(b *testing.B, senders int) {
	ctx := context.Background()
	s := newStore(b, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"))
	const chats = 1000
	chatIDs := make([]int64, chats)
	for i := range chatIDs {
		id, _, err := s.AcceptContact(ctx, int64(2*i+1), int64(2*i+2), 0)
		if err != nil {
			b.Fatal(err)
		}
		chatIDs[i] = id
	}
	w := s.NewWriter(DefaultMaxBatch, nil)
	defer w.Close()
	var next sync.Mutex
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			prev := map[int]int64{}
			for {
				next.Lock()
				i := n
				n++
				next.Unlock()
				if i >= b.N {
					return
				}
				c := i % chats
				from, to := int64(2*c+1), int64(2*c+2)
				ins, err := w.Insert(ctx, chat.Message{ChatID: chatIDs[c], FromUserID: from, ToUserID: to,
					Text: "load#" + strconv.Itoa(i) + " hola, esto es un mensaje de prueba de carga", ClientMessageID: "L" + strconv.Itoa(i)})
				if err != nil {
					b.Error(err)
					return
				}
				if id, ok := prev[c]; ok {
					if _, err := w.Deliver(ctx, to, []int64{id}); err != nil {
						b.Error(err)
						return
					}
				}
				prev[c] = ins.Message.ID
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	batches, ops := w.Stats()
	if batches > 0 {
		b.ReportMetric(float64(ops)/float64(batches), "ops/commit")
	}
}
