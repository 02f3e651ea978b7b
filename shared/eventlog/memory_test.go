package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/eventlog/logtest"
)

func TestMemory(t *testing.T) {
	logtest.Run(t, func(t *testing.T, opt eventlog.Options) func() eventlog.Log {
		shared := eventlog.NewMemory(opt)
		return func() eventlog.Log { return shared }
	}, true)
}

// clockedMemory is a memory log that keeps maxEvents per user beyond a MaxAge of one
// second, on a clock the test moves by setting *now.
func clockedMemory(maxEvents int) (*eventlog.Memory, *time.Time) {
	now := time.Unix(1_700_000_000, 0)
	l := eventlog.NewMemory(eventlog.Options{MaxEvents: maxEvents, MaxAge: time.Second, Now: func() time.Time { return now }})
	return l, &now
}

// TestMemoryDataOutlivesRetention: the Data of a record read from the history stays the
// same while later appends grow the user's bytes and retention drops the record.
func TestMemoryDataOutlivesRetention(t *testing.T) {
	l, now := clockedMemory(2)
	ctx := context.Background()
	for i := range 3 {
		if _, err := l.Append(ctx, eventlog.Event{Service: "chat", Exclude: fmt.Sprint("conn-", i), Data: []byte(fmt.Sprint("event-", i))}, []int64{7}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := l.Read(ctx, 7, 0)
	if err != nil || len(h.Records) != 3 {
		t.Fatalf("Read: %+v, %v; want 3 records", h, err)
	}
	*now = now.Add(time.Minute)
	for i := 3; i < 40; i++ {
		if _, err := l.Append(ctx, eventlog.Event{Service: "profile", Data: []byte(fmt.Sprint("later-", i))}, []int64{7}); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range h.Records {
		if string(r.Data) != fmt.Sprint("event-", i) || r.Exclude != fmt.Sprint("conn-", i) || r.Service != "chat" || r.Seq != uint64(i+1) {
			t.Errorf("record %d read before the drops is now %q/%q/%s seq %d", i, r.Data, r.Exclude, r.Service, r.Seq)
		}
	}
	if _, err := l.Append(ctx, eventlog.Event{Data: []byte("x")}, []int64{7}); err != nil {
		t.Fatal(err)
	}
	h2, _ := l.Read(ctx, 7, 38)
	if len(h2.Records) != 3 || string(h2.Records[0].Data) != "later-38" || h2.Records[0].Service != "profile" || string(h2.Records[2].Data) != "x" {
		t.Fatalf("the newest records after drops: %+v", h2.Records)
	}
}

// TestMemoryRecordsOfEverySize: records from empty to larger than a chunk, many of them,
// read back byte for byte while retention drops the oldest.
func TestMemoryRecordsOfEverySize(t *testing.T) {
	l, now := clockedMemory(50)
	ctx := context.Background()
	payload := func(i int) []byte {
		b := make([]byte, (i*997)%20_000)
		for j := range b {
			b[j] = byte(i + j)
		}
		return b
	}
	for i := range 300 {
		*now = now.Add(100 * time.Millisecond)
		if _, err := l.Append(ctx, eventlog.Event{Service: "chat", Exclude: fmt.Sprint("c", i), Data: payload(i)}, []int64{4}); err != nil {
			t.Fatal(err)
		}
		if i%37 != 0 {
			continue
		}
		h, err := l.Read(ctx, 4, 0)
		if err != nil {
			t.Fatal(err)
		}
		first := uint64(i+1) - uint64(len(h.Records)) + 1
		for k, r := range h.Records {
			n := int(first) + k - 1
			if r.Seq != uint64(n+1) || r.Exclude != fmt.Sprint("c", n) || string(r.Data) != string(payload(n)) {
				t.Fatalf("after %d appends, record seq %d (event %d) came back as seq %d, exclude %q, %d bytes", i+1, n+1, n, r.Seq, r.Exclude, len(r.Data))
			}
		}
	}
}

// TestMemoryTailPastRetention: a tail resuming at records its users' retention already
// dropped gets ErrTooOld (the edge then catches its users up by their seqs), not records
// with a gap.
func TestMemoryTailPastRetention(t *testing.T) {
	l, now := clockedMemory(1)
	ctx := context.Background()
	first, err := l.Append(ctx, eventlog.Event{Data: []byte("a")}, []int64{1})
	if err != nil {
		t.Fatal(err)
	}
	l.Append(ctx, eventlog.Event{Data: []byte("b")}, []int64{1})
	*now = now.Add(time.Minute)
	l.Append(ctx, eventlog.Event{Data: []byte("c")}, []int64{1}) // drops "a" and "b"
	before := first[0].Position - 1
	err = l.Tail(ctx, &before, func(uint64) {}, func([]eventlog.Record) error { return nil })
	if !errors.Is(err, eventlog.ErrTooOld) {
		t.Fatalf("Tail from before dropped records: %v, want ErrTooOld", err)
	}
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
