package store

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// processWrites returns how many bytes the process has handed to write syscalls so far
// and how many such calls it made (wchar and syscw of /proc/self/io; 0, 0 where there is
// no /proc).
func processWrites() (bytes, calls float64) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		key, value, _ := strings.Cut(strings.TrimSpace(line), ": ")
		v, _ := strconv.ParseFloat(value, 64)
		switch key {
		case "wchar":
			bytes = v
		case "syscw":
			calls = v
		}
	}
	return bytes, calls
}

// BenchmarkWriterUnderLoad measures the group commit on SQLite as chat uses it under load: 4,
// 16 or 256 senders (small or large batches) in 1,000 chats each insert a message and report the one before it delivered,
// the way a recipient's edge does. cpu-ns/op is the process's CPU per message, steadier
// than ns/op on a shared machine; written-B/op and writes/op are what the process wrote
// per message (SQLite's log frames and checkpoints: a page, 4 KiB, per B-tree leaf a batch
// dirtied, so they grow with the index leaves one message touches). Run it with
// -benchtime 400000x for a database of a realistic size: a young one fits in a few
// leaves per index, which every batch shares.
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
	bytes0, calls0 := processWrites()
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
	if bytes, calls := processWrites(); bytes > 0 {
		b.ReportMetric((bytes-bytes0)/float64(b.N), "written-B/op")
		b.ReportMetric((calls-calls0)/float64(b.N), "writes/op")
	}
	batches, ops := w.Stats()
	if batches > 0 {
		b.ReportMetric(float64(ops)/float64(batches), "ops/commit")
	}
}
