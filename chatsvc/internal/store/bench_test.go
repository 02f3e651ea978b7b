package store

import (
	"context"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
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

// goroutinesCreated returns how many goroutines the process has started so far. A
// goroutine the database driver starts per statement costs its creation, a wake-up and
// an exit, steadier to count than to time on a shared machine.
func goroutinesCreated() uint64 {
	sample := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

// processIO returns what the process has handed to write and read syscalls so far, in
// bytes and calls (wchar, syscw, rchar and syscr of /proc/self/io; zeros where there is no
// /proc).
func processIO() (written, writes, read, reads float64) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0, 0, 0
	}
	for line := range strings.Lines(string(b)) {
		key, value, _ := strings.Cut(strings.TrimSpace(line), ": ")
		v, _ := strconv.ParseFloat(value, 64)
		switch key {
		case "wchar":
			written = v
		case "syscw":
			writes = v
		case "rchar":
			read = v
		case "syscr":
			reads = v
		}
	}
	return written, writes, read, reads
}

// BenchmarkWriterUnderLoad measures the group commit on SQLite as chat uses it under load: 4,
// 16 or 256 senders (small or large batches) in 1,000 chats each insert a message and report the one before it delivered,
// the way a recipient's edge does. cpu-ns/op is the process's CPU per message, steadier
// than ns/op on a shared machine; written-B/op and writes/op are what the process wrote
// per message (SQLite's log frames and checkpoints: a page, 4 KiB, per B-tree leaf a batch
// dirtied, so they grow with the index leaves one message touches). It starts from an
// empty database, whose indexes fit in a few leaves every batch shares:
// BenchmarkWriterGrownHistory measures a grown one.
func BenchmarkWriterUnderLoad(b *testing.B) {
	for _, senders := range []int{4, 16, 256} {
		b.Run("senders="+strconv.Itoa(senders), func(b *testing.B) { benchWriterUnderLoad(b, senders, 0) })
	}
}

// BenchmarkWriterGrownHistory is BenchmarkWriterUnderLoad's 16 senders on a database that
// already holds 300,000 messages in its 1,000 chats (what a 30 s overload at 10,000 msg/s
// leaves), written in large transactions before the timer starts: the cost per message a
// server pays once its history has grown, which an empty database hides (its indexes fit in
// a few leaves every batch shares). read-B/op counts the pages SQLite read back because its
// cache no longer held them.
func BenchmarkWriterGrownHistory(b *testing.B) {
	benchWriterUnderLoad(b, 16, 300_000)
}

// grownStore returns a SQLite store with 1,000 chats holding history messages, written in
// large transactions, and the function that makes the i-th message (i from history on for
// new ones): chat i % 1,000, from its first user to its second.
func grownStore(b *testing.B, history int) (*Store, func(i int) chat.Message) {
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
	message := func(i int) chat.Message {
		c := i % chats
		return chat.Message{ChatID: chatIDs[c], FromUserID: int64(2*c + 1), ToUserID: int64(2*c + 2),
			Text: "load#" + strconv.Itoa(i) + " hola, esto es un mensaje de prueba de carga", ClientMessageID: "L" + strconv.Itoa(i)}
	}
	const prefillBatch = 1000
	for start := 0; start < history; start += prefillBatch {
		msgs := make([]chat.Message, 0, prefillBatch)
		for i := start; i < min(start+prefillBatch, history); i++ {
			msgs = append(msgs, message(i))
		}
		if _, err := s.InsertMessages(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
	return s, message
}

// benchWriterUnderLoad runs senders goroutines inserting messages into 1,000 chats through
// the writer, each also reporting its previous message of the chat delivered, after
// history messages were stored in large transactions.
func benchWriterUnderLoad(b *testing.B, senders, history int) {
	ctx := context.Background()
	s, message := grownStore(b, history)
	w := s.NewWriter(DefaultMaxBatch, nil)
	defer w.Close()
	var next sync.Mutex
	n := history
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	written0, writes0, read0, reads0 := processIO()
	goroutines0 := goroutinesCreated()
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			prev := map[int64]int64{} // chat → its last message
			for {
				next.Lock()
				i := n
				n++
				next.Unlock()
				if i >= history+b.N {
					return
				}
				m := message(i)
				ins, err := w.Insert(ctx, m)
				if err != nil {
					b.Error(err)
					return
				}
				if id, ok := prev[m.ChatID]; ok {
					if _, err := w.Deliver(ctx, m.ToUserID, []int64{id}); err != nil {
						b.Error(err)
						return
					}
				}
				prev[m.ChatID] = ins.Message.ID
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(goroutinesCreated()-goroutines0-uint64(senders))/float64(b.N), "goroutines/op")
	if written, writes, read, reads := processIO(); written > 0 {
		b.ReportMetric((written-written0)/float64(b.N), "written-B/op")
		b.ReportMetric((writes-writes0)/float64(b.N), "writes/op")
		b.ReportMetric((read-read0)/float64(b.N), "read-B/op")
		b.ReportMetric((reads-reads0)/float64(b.N), "reads/op")
	}
	batches, ops := w.Stats()
	if batches > 0 {
		b.ReportMetric(float64(ops)/float64(batches), "ops/commit")
	}
}

// BenchmarkWriterAtFixedRate offers b.N messages to the writer at 2,000 a second, open
// loop (each on its own goroutine at its scheduled time, the recipient's receipt for the
// chat's previous message after it), on a history of 300,000 messages, and reports the
// latency from each message's scheduled time to its insert's return: p99, p999, the
// largest, and the worst p99 of any second. What it shows is the writer's stalls, the
// checkpoints above all (shared/sqldb/checkpoint.go); run it for 20 s or more
// (-benchtime 40000x) to see the log rewound several times.
func BenchmarkWriterAtFixedRate(b *testing.B) {
	const rate, history = 2000, 300_000
	ctx := context.Background()
	s, message := grownStore(b, history)
	w := s.NewWriter(DefaultMaxBatch, nil)
	defer w.Close()
	latency := make([]time.Duration, b.N)
	var prevMu sync.Mutex
	prev := map[int64]int64{} // chat → its last message
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for k := range b.N {
		at := start.Add(time.Duration(k) * time.Second / rate)
		time.Sleep(time.Until(at))
		wg.Go(func() {
			m := message(history + k)
			ins, err := w.Insert(ctx, m)
			latency[k] = time.Since(at)
			if err != nil {
				b.Error(err)
				return
			}
			prevMu.Lock()
			id, ok := prev[m.ChatID]
			prev[m.ChatID] = ins.Message.ID
			prevMu.Unlock()
			if ok {
				if _, err := w.Deliver(ctx, m.ToUserID, []int64{id}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	worst := time.Duration(0)
	for from := 0; from < b.N; from += rate {
		worst = max(worst, percentile(latency[from:min(from+rate, b.N)], 0.99))
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(latency, 0.99)), "p99-ms")
	b.ReportMetric(ms(percentile(latency, 0.999)), "p999-ms")
	b.ReportMetric(ms(percentile(latency, 1)), "max-ms")
	b.ReportMetric(ms(worst), "worst-second-p99-ms")
}

// percentile returns the q-th quantile (0 < q ≤ 1) of ds, which it leaves unsorted.
func percentile(ds []time.Duration, q float64) time.Duration {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}
