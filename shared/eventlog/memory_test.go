package eventlog_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/eventlog/logtest"
)

func TestMemory(t *testing.T) {
	logtest.Run(t, func(t *testing.T, opt eventlog.Options) func() eventlog.Log {
		shared := eventlog.NewMemory(opt)
		return func() eventlog.Log { return shared }
	}, true)
}

// BenchmarkMemoryHistoryGC measures a full garbage collection with a history of a million
// records (500,000 chat messages to 2,000 users, a few minutes at 2,000 msg/s): the mark
// work the history adds to every cycle.
func BenchmarkMemoryHistoryGC(b *testing.B) {
	l := eventlog.NewMemory(eventlog.Options{})
	ctx := context.Background()
	data := make([]byte, 150)
	for i := range 500_000 {
		u := int64(i % 1000)
		ev := eventlog.Event{Service: "chat", Exclude: "c-0123456789abcdef", Data: append([]byte(nil), data...), Key: fmt.Sprint("chat.msg.", i)}
		if _, err := l.Append(ctx, ev, []int64{u + 1000, u}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
	runtime.KeepAlive(l)
}

// BenchmarkMemoryAppend measures appending a chat message's event (150 bytes, keyed) to
// its two users, with 2,000 users' histories growing meanwhile.
func BenchmarkMemoryAppend(b *testing.B) {
	l := eventlog.NewMemory(eventlog.Options{})
	ctx := context.Background()
	data := make([]byte, 150)
	i := 0
	for b.Loop() {
		u := int64(i % 1000)
		ev := eventlog.Event{Service: "chat", Exclude: "c-0123456789abcdef", Data: data, Key: "chat.msg." + strconv.Itoa(i)}
		if _, err := l.Append(ctx, ev, []int64{u + 1000, u}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
