// Package logtest is the conformance suite every eventlog.Log implementation passes.
package logtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/charla/charla/shared/eventlog"
)

// Factory opens a log for one test. Logs opened by one Factory call share their storage
// when shared is true (two processes on one bus); otherwise each call starts empty.
type Factory func(t *testing.T, opt eventlog.Options) (open func() eventlog.Log)

// Run runs the suite. exactAge says whether the log honours MaxAge beyond MaxEvents
// exactly (the memory log does; JetStream keeps MaxEvents per user).
func Run(t *testing.T, factory Factory, exactAge bool) {
	t.Run("SeqConsecutivePerUser", func(t *testing.T) { testSeq(t, factory) })
	t.Run("ConcurrentAppendersShareOneCounter", func(t *testing.T) { testConcurrent(t, factory) })
	t.Run("Read", func(t *testing.T) { testRead(t, factory) })
	t.Run("TailFromHead", func(t *testing.T) { testTailHead(t, factory) })
	t.Run("TailResumesWithoutGapWhileAppending", func(t *testing.T) { testTailResume(t, factory) })
	t.Run("TailTooOld", func(t *testing.T) { testTailTooOld(t, factory) })
	t.Run("RetentionKeepsNewestMaxEvents", func(t *testing.T) { testRetention(t, factory, exactAge) })
	t.Run("KeyedAppendIsIdempotentPerUser", func(t *testing.T) { testKeyed(t, factory) })
}

// testKeyed: an event appended again with the same Key (another process announcing what
// a dead one may have announced) adds no record for the users who have it, and does for
// the others; the caller gets the earlier record.
func testKeyed(t *testing.T, factory Factory) {
	open := factory(t, eventlog.Options{})
	l1, l2 := open(), open()
	defer l1.Close()
	defer l2.Close()
	keyed := ev("m")
	keyed.Key = "chat.msg.42"
	first := mustAppend(t, l1, keyed, 1, 2)
	mustAppend(t, l1, ev("other"), 1)
	again := mustAppend(t, l2, keyed, 1, 3)
	if len(again) != 2 || again[0].UserID != 1 || again[0].Seq != first[0].Seq || again[0].Position != first[0].Position {
		t.Fatalf("keyed append again for user 1 gave %+v, want the earlier record %+v", again, first[0])
	}
	if again[1].UserID != 3 || again[1].Seq != 1 || string(again[1].Data) != "m" {
		t.Fatalf("keyed append for a new user 3 gave %+v, want its first record", again[1])
	}
	for user, want := range map[int64]uint64{1: 2, 2: 1, 3: 1} {
		h, err := l1.Read(context.Background(), user, 0)
		if err != nil {
			t.Fatal(err)
		}
		if h.LastSeq != want || len(h.Records) != int(want) {
			t.Errorf("user %d: last seq %d, %d records; want %d (the key stored once)", user, h.LastSeq, len(h.Records), want)
		}
	}
	other := ev("m")
	other.Key = "chat.msg.43"
	if r := mustAppend(t, l2, other, 1); r[0].Seq != 3 {
		t.Errorf("another key for user 1 got seq %d, want 3", r[0].Seq)
	}
}

func ev(s string) eventlog.Event {
	return eventlog.Event{Service: "chat", Exclude: "conn-" + s, Data: []byte(s)}
}

func mustAppend(t *testing.T, l eventlog.Log, e eventlog.Event, users ...int64) []eventlog.Record {
	t.Helper()
	recs, err := l.Append(context.Background(), e, users)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return recs
}

func testSeq(t *testing.T, factory Factory) {
	l := factory(t, eventlog.Options{})()
	defer l.Close()
	r1 := mustAppend(t, l, ev("a"), 1, 2, 1)
	if len(r1) != 2 {
		t.Fatalf("Append(1,2,1) gave %d records, want 2 (duplicates once)", len(r1))
	}
	r2 := mustAppend(t, l, ev("b"), 2)
	r3 := mustAppend(t, l, ev("c"), 1, 3)
	want := []struct {
		r    eventlog.Record
		user int64
		seq  uint64
		data string
	}{{r1[0], 1, 1, "a"}, {r1[1], 2, 1, "a"}, {r2[0], 2, 2, "b"}, {r3[0], 1, 2, "c"}, {r3[1], 3, 1, "c"}}
	var lastPos uint64
	for i, w := range want {
		if w.r.UserID != w.user || w.r.Seq != w.seq || string(w.r.Data) != w.data || w.r.Service != "chat" || w.r.Exclude != "conn-"+w.data {
			t.Errorf("record %d = %+v, want user %d seq %d data %q", i, w.r, w.user, w.seq, w.data)
		}
		if w.r.Position <= lastPos {
			t.Errorf("record %d position %d not above %d", i, w.r.Position, lastPos)
		}
		lastPos = w.r.Position
		if w.r.TimeMs <= 0 {
			t.Errorf("record %d has no time", i)
		}
	}
}

func testConcurrent(t *testing.T, factory Factory) {
	open := factory(t, eventlog.Options{})
	logs := []eventlog.Log{open(), open()}
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	const writers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := logs[w%len(logs)]
			for i := range each {
				if _, err := l.Append(context.Background(), ev(fmt.Sprintf("w%d-%d", w, i)), []int64{7, int64(100 + w)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	h, err := logs[0].Read(context.Background(), 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Complete || h.LastSeq != writers*each || len(h.Records) != writers*each {
		t.Fatalf("user 7: complete %v last %d records %d, want complete, %d, %d", h.Complete, h.LastSeq, len(h.Records), writers*each, writers*each)
	}
	seen := map[string]bool{}
	for i, r := range h.Records {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
		if seen[string(r.Data)] {
			t.Fatalf("event %s stored twice", r.Data)
		}
		seen[string(r.Data)] = true
		if i > 0 && r.Position <= h.Records[i-1].Position {
			t.Fatalf("seq %d at position %d not after seq %d at %d", r.Seq, r.Position, r.Seq-1, h.Records[i-1].Position)
		}
	}
}

func testRead(t *testing.T, factory Factory) {
	l := factory(t, eventlog.Options{})()
	defer l.Close()
	ctx := context.Background()
	h, err := l.Read(ctx, 42, 0)
	if err != nil || !h.Complete || h.LastSeq != 0 || len(h.Records) != 0 {
		t.Fatalf("never seen user, after 0: %+v %v; want complete, empty", h, err)
	}
	if last, err := l.LastSeq(ctx, 42); err != nil || last != 0 {
		t.Fatalf("LastSeq of a never seen user: %d, %v; want 0", last, err)
	}
	if h, _ := l.Read(ctx, 42, 3); h.Complete {
		t.Fatalf("never seen user, after 3: complete; want failed")
	}
	for i := range 5 {
		mustAppend(t, l, ev(fmt.Sprint(i)), 42)
	}
	h, _ = l.Read(ctx, 42, 2)
	if !h.Complete || h.LastSeq != 5 || len(h.Records) != 3 || h.Records[0].Seq != 3 || string(h.Records[2].Data) != "4" {
		t.Fatalf("after 2: %+v; want seqs 3..5", h)
	}
	mustAppend(t, l, ev("other"), 43)
	if last, err := l.LastSeq(ctx, 42); err != nil || last != 5 {
		t.Fatalf("LastSeq after 5 appends (and one for another user): %d, %v; want 5", last, err)
	}
	if h, _ := l.Read(ctx, 42, 5); !h.Complete || len(h.Records) != 0 || h.LastSeq != 5 {
		t.Fatalf("after 5: %+v; want complete, empty", h)
	}
	if h, _ := l.Read(ctx, 42, 6); h.Complete || h.LastSeq != 5 {
		t.Fatalf("after 6 (beyond last): %+v; want not complete", h)
	}
}

// collector gathers what a tail passes.
type collector struct {
	mu      sync.Mutex
	recs    []eventlog.Record
	started chan uint64
}

func tail(t *testing.T, l eventlog.Log, after *uint64) (*collector, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{started: make(chan uint64, 1)}
	done := make(chan error, 1)
	go func() {
		done <- l.Tail(ctx, after, func(a uint64) { c.started <- a }, func(rs []eventlog.Record) error {
			c.mu.Lock()
			c.recs = append(c.recs, rs...)
			c.mu.Unlock()
			return nil
		})
	}()
	stop := func() error {
		cancel()
		return <-done
	}
	select {
	case <-c.started:
	case err := <-done:
		t.Fatalf("Tail ended before it started: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Tail did not start")
	}
	return c, stop
}

func (c *collector) waitFor(t *testing.T, n int) []eventlog.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		got := len(c.recs)
		c.mu.Unlock()
		if got >= n {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // anything beyond n would show now
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.recs) != n {
		t.Fatalf("tail got %d records, want %d", len(c.recs), n)
	}
	return append([]eventlog.Record(nil), c.recs...)
}

func testTailHead(t *testing.T, factory Factory) {
	l := factory(t, eventlog.Options{})()
	defer l.Close()
	mustAppend(t, l, ev("before"), 1)
	c, stop := tail(t, l, nil)
	mustAppend(t, l, ev("x"), 1, 2)
	got := c.waitFor(t, 2)
	if string(got[0].Data) != "x" || got[0].UserID != 1 || got[0].Seq != 2 || got[1].UserID != 2 || got[1].Seq != 1 {
		t.Fatalf("tail from head got %+v", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("Tail after cancel: %v", err)
	}
}

func testTailResume(t *testing.T, factory Factory) {
	open := factory(t, eventlog.Options{})
	l, writer := open(), open()
	defer l.Close()
	defer writer.Close()
	first := mustAppend(t, writer, ev("0"), 5)
	for i := 1; i < 20; i++ {
		mustAppend(t, writer, ev(fmt.Sprint(i)), 5)
	}
	// Resume after the first record while another appender keeps going.
	after := first[0].Position
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 20; i < 60; i++ {
			if _, err := writer.Append(context.Background(), ev(fmt.Sprint(i)), []int64{5}); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
		}
	}()
	c, stop := tail(t, l, &after)
	<-done
	got := c.waitFor(t, 59)
	for i, r := range got {
		if r.Seq != uint64(i+2) || string(r.Data) != fmt.Sprint(i+1) {
			t.Fatalf("record %d: seq %d data %s; want seq %d data %d (no gap, no duplicate)", i, r.Seq, r.Data, i+2, i+1)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func testTailTooOld(t *testing.T, factory Factory) {
	l := factory(t, eventlog.Options{})()
	defer l.Close()
	recs := mustAppend(t, l, ev("a"), 1)
	future := recs[0].Position + 1000
	err := l.Tail(context.Background(), &future, func(uint64) {}, func([]eventlog.Record) error { return nil })
	if !errors.Is(err, eventlog.ErrTooOld) {
		t.Fatalf("Tail after a position never written: %v, want ErrTooOld", err)
	}
}

func testRetention(t *testing.T, factory Factory, exactAge bool) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := factory(t, eventlog.Options{MaxEvents: 3, MaxAge: time.Minute, Now: clock})()
	defer l.Close()
	ctx := context.Background()
	for i := range 5 {
		mustAppend(t, l, ev(fmt.Sprint(i)), 9)
	}
	h, _ := l.Read(ctx, 9, 0)
	if exactAge {
		// All five are younger than MaxAge: all held.
		if !h.Complete || len(h.Records) != 5 {
			t.Fatalf("5 young records, MaxEvents 3: %d held, complete %v; want all 5", len(h.Records), h.Complete)
		}
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	mustAppend(t, l, ev("5"), 9)
	h, _ = l.Read(ctx, 9, 0)
	if h.Complete || h.LastSeq != 6 {
		t.Fatalf("after the old ones aged out: complete %v last %d; want not complete, 6", h.Complete, h.LastSeq)
	}
	h, _ = l.Read(ctx, 9, 3)
	if !h.Complete || len(h.Records) != 3 || h.Records[0].Seq != 4 {
		t.Fatalf("the newest 3 are held: %+v", h)
	}
	if last, err := l.LastSeq(ctx, 9); err != nil || last != 6 {
		t.Fatalf("LastSeq once older records are gone: %d, %v; want 6", last, err)
	}
	// The counter survives retention.
	recs := mustAppend(t, l, ev("6"), 9)
	if recs[0].Seq != 7 {
		t.Fatalf("next seq %d, want 7", recs[0].Seq)
	}
}
