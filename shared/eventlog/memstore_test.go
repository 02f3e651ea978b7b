package eventlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memoryAt is a memory log on a clock the test moves by setting *now.
func memoryAt(maxEvents int, maxAge time.Duration) (*Memory, *time.Time) {
	now := time.Unix(1_700_000_000, 0)
	return NewMemory(Options{MaxEvents: maxEvents, MaxAge: maxAge, Now: func() time.Time { return now }}), &now
}

func mustAppend(t *testing.T, m *Memory, ev Event, users ...int64) []Record {
	t.Helper()
	recs, err := m.Append(context.Background(), ev, users)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return recs
}

// heldBytes is how many event bytes the store holds.
func heldBytes(m *Memory) int {
	n := 0
	for _, c := range m.bytes.chunks {
		n += len(c.buf)
	}
	return n
}

// wantHistory checks that user's held records read back as the events named, in order.
func wantHistory(t *testing.T, m *Memory, user int64, want ...string) {
	t.Helper()
	h, err := m.Read(context.Background(), user, m.users[user].firstSeq()-1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range h.Records {
		if r.Exclude != "x-"+string(r.Data) {
			t.Errorf("user %d: record %q has exclude %q, want %q", user, r.Data, r.Exclude, "x-"+string(r.Data))
		}
		got = append(got, string(r.Data))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("user %d holds %v, want %v", user, got, want)
	}
}

func named(s string) Event { return Event{Service: "chat", Exclude: "x-" + s, Data: []byte(s)} }

// TestMemoryStoresAnEventOnce: an event to several users is held once, and stays readable
// for one of them after the other's retention dropped it.
func TestMemoryStoresAnEventOnce(t *testing.T) {
	one, _ := memoryAt(1, time.Second)
	mustAppend(t, one, named("hello"), 1)
	m, now := memoryAt(1, time.Second)
	mustAppend(t, m, named("hello"), 1, 2, 3)
	if got, want := heldBytes(m), heldBytes(one); got != want || want < len("x-hello")+len("hello") {
		t.Fatalf("an event to three users holds %d bytes, to one user %d: want the same", got, want)
	}
	*now = now.Add(time.Minute)
	mustAppend(t, m, named("later"), 1) // user 1's retention drops "hello"
	wantHistory(t, m, 1, "later")
	wantHistory(t, m, 2, "hello")
	wantHistory(t, m, 3, "hello")
}

// TestMemoryRetiresOldChunks: a chunk last written longer than MaxAge ago is released
// once its held records (here of users who get few events, kept as their newest
// MaxEvents) are copied to the newest chunk, an event shared by two users copied once;
// every record reads back unchanged, and so does Data read before the copy.
func TestMemoryRetiresOldChunks(t *testing.T) {
	m, now := memoryAt(100, time.Second)
	mustAppend(t, m, named("a1"), 1, 2)
	mustAppend(t, m, named("a2"), 1)
	before, _ := m.Read(context.Background(), 1, 0)
	busy := bytes.Repeat([]byte("b"), 1000)
	// User 3 fills many chunks; retention drops its older records as they age.
	appends := 5 * byteChunkSize / len(busy)
	for i := range appends {
		*now = now.Add(10 * time.Millisecond)
		mustAppend(t, m, Event{Service: "chat", Data: busy}, 3)
		if i == 0 && m.bytes.first != 0 {
			t.Fatal("a chunk was retired before MaxAge")
		}
	}
	if m.bytes.first == 0 {
		t.Fatalf("the first chunk is still held %v after its last write", time.Duration(appends)*10*time.Millisecond)
	}
	if len(m.bytes.chunks) > 3 {
		t.Errorf("%d chunks held for %d bytes of young records", len(m.bytes.chunks), len(busy)*100)
	}
	wantHistory(t, m, 1, "a1", "a2")
	wantHistory(t, m, 2, "a1")
	h1, h2 := m.users[1].recs[0], m.users[2].recs[0]
	if h1.event != h2.event {
		t.Errorf("the event of users 1 and 2 was copied twice: %+v, %+v", h1, h2)
	}
	if string(before.Records[0].Data) != "a1" || string(before.Records[1].Data) != "a2" {
		t.Errorf("Data read before the copy changed: %q, %q", before.Records[0].Data, before.Records[1].Data)
	}
}

// TestMemoryHoldsKeyedRecordsForTheDedupeWindow: with MaxAge shorter than DedupeWindow a
// keyed record is held until the window passes, so a repeat of its key within it adds
// nothing, even beyond MaxEvents.
func TestMemoryHoldsKeyedRecordsForTheDedupeWindow(t *testing.T) {
	m, now := memoryAt(1, time.Second)
	keyed := named("m")
	keyed.Key = "chat.msg.1"
	first := mustAppend(t, m, keyed, 1)
	*now = now.Add(30 * time.Second)
	mustAppend(t, m, named("n"), 1)
	again := mustAppend(t, m, keyed, 1)
	if again[0].Seq != first[0].Seq {
		t.Fatalf("the key repeated 30 s later got seq %d, want the first record's %d", again[0].Seq, first[0].Seq)
	}
	wantHistory(t, m, 1, "m", "n")
	*now = now.Add(DedupeWindow)
	mustAppend(t, m, named("o"), 1)
	wantHistory(t, m, 1, "o")
	if len(m.keys) != 0 {
		t.Errorf("%d keys remembered after the window", len(m.keys))
	}
}

// TestMemoryKeyFilterFollowsTheNewestAppend: a key appended again for another user keeps
// it remembered for that user's window, while the first user's record of it ages out on
// its own.
func TestMemoryKeyFilterFollowsTheNewestAppend(t *testing.T) {
	m, now := memoryAt(100, time.Hour)
	keyed := named("m")
	keyed.Key = "chat.msg.7"
	mustAppend(t, m, keyed, 1)
	*now = now.Add(50 * time.Second)
	mustAppend(t, m, keyed, 2)
	*now = now.Add(20 * time.Second)
	if r := mustAppend(t, m, keyed, 2, 1); r[0].Seq != 1 || r[1].Seq != 2 {
		t.Fatalf("70 s after user 1's record and 20 s after user 2's: seqs %d, %d; want 1 (held) and 2 (new)", r[0].Seq, r[1].Seq)
	}
}

// TestMemoryHistoryMatchesAModel appends random events (one to four of 30 users, some
// keyed and repeated, sizes up to 3 KiB; in the first minute also some to ten quiet users
// who get one event each) over ten simulated minutes and checks every user's held records
// against a plain model of what was appended: the same bytes in the same order, at least
// the newest MaxEvents and everything younger than MaxAge held, the store's counts
// matching the records held, and its chunks not much larger than the events they hold.
func TestMemoryHistoryMatchesAModel(t *testing.T) {
	const maxEvents, users = 20, 30
	m, now := memoryAt(maxEvents, 30*time.Second)
	rng := rand.New(rand.NewPCG(1, 2))
	type modelRec struct {
		data   string
		timeMs int64
	}
	model := map[int64][]modelRec{}
	keyedTo := map[string]map[int64]int64{} // key → user → when they got it
	for step := range 20_000 {
		*now = now.Add(time.Duration(rng.IntN(60)) * time.Millisecond)
		ev := named(fmt.Sprint("e", step, "-", strings.Repeat("z", rng.IntN(3000))))
		if rng.IntN(4) == 0 {
			ev.Key = fmt.Sprint("k", rng.IntN(50))
		}
		var to []int64
		for range 1 + rng.IntN(4) {
			to = append(to, int64(rng.IntN(users)))
		}
		if step < 1000 && step%10 == 0 {
			to = append(to, int64(users+step/10)) // a quiet user's only event
		}
		recs := mustAppend(t, m, ev, to...)
		for _, r := range recs {
			if got := keyedTo[ev.Key][r.UserID]; ev.Key != "" && got >= now.Add(-DedupeWindow).UnixMilli() {
				continue // a repeat within the window: nothing appended for this user
			}
			model[r.UserID] = append(model[r.UserID], modelRec{string(ev.Data), now.UnixMilli()})
			if ev.Key != "" {
				if keyedTo[ev.Key] == nil {
					keyedTo[ev.Key] = map[int64]int64{}
				}
				keyedTo[ev.Key][r.UserID] = now.UnixMilli()
			}
		}
		if step%500 != 0 {
			continue
		}
		held := 0
		for u, all := range model {
			h := m.users[u]
			if h.last != uint64(len(all)) {
				t.Fatalf("step %d: user %d last seq %d, model %d", step, u, h.last, len(all))
			}
			first := int(h.firstSeq()) - 1
			young := sort.Search(len(all), func(i int) bool { return all[i].timeMs >= now.Add(-30*time.Second).UnixMilli() })
			if first > min(young, max(len(all)-maxEvents, 0)) {
				t.Fatalf("step %d: user %d holds from seq %d, must hold from %d", step, u, first+1, min(young, len(all)-maxEvents)+1)
			}
			for i := range h.recs {
				r := h.at(m, u, i)
				if want := all[first+i]; string(r.Data) != want.data || r.Exclude != "x-"+want.data || r.TimeMs != want.timeMs {
					t.Fatalf("step %d: user %d seq %d reads %.20q, want %.20q", step, u, r.Seq, r.Data, want.data)
				}
			}
			held += len(h.recs)
		}
		refs := 0
		for _, c := range m.bytes.chunks {
			refs += c.refs
		}
		if refs != held {
			t.Fatalf("step %d: chunks count %d records, %d held", step, refs, held)
		}
		events := map[byteLoc]int{}
		for _, h := range m.users {
			for _, r := range h.recs {
				events[r.event] = m.bytes.get(r.event).size
			}
		}
		live := 0
		for _, n := range events {
			live += n
		}
		// After the first minute the chunks written then are retired; the quiet users'
		// events in them, a few MB if left in place, are copied out.
		if total := heldBytes(m); step > 2000 && total > live+live/8+2*byteChunkSize {
			t.Fatalf("step %d: chunks hold %d bytes for %d bytes of held events", step, total, live)
		}
	}
}

// TestMemoryDataOutlivesRetention: the Data of a record read from the history stays the
// same while later appends grow the user's bytes and retention drops the record.
func TestMemoryDataOutlivesRetention(t *testing.T) {
	l, now := memoryAt(2, time.Second)
	ctx := context.Background()
	for i := range 3 {
		if _, err := l.Append(ctx, Event{Service: "chat", Exclude: fmt.Sprint("conn-", i), Data: []byte(fmt.Sprint("event-", i))}, []int64{7}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := l.Read(ctx, 7, 0)
	if err != nil || len(h.Records) != 3 {
		t.Fatalf("Read: %+v, %v; want 3 records", h, err)
	}
	*now = now.Add(time.Minute)
	for i := 3; i < 40; i++ {
		if _, err := l.Append(ctx, Event{Service: "profile", Data: []byte(fmt.Sprint("later-", i))}, []int64{7}); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range h.Records {
		if string(r.Data) != fmt.Sprint("event-", i) || r.Exclude != fmt.Sprint("conn-", i) || r.Service != "chat" || r.Seq != uint64(i+1) {
			t.Errorf("record %d read before the drops is now %q/%q/%s seq %d", i, r.Data, r.Exclude, r.Service, r.Seq)
		}
	}
	if _, err := l.Append(ctx, Event{Data: []byte("x")}, []int64{7}); err != nil {
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
	l, now := memoryAt(50, time.Second)
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
		if _, err := l.Append(ctx, Event{Service: "chat", Exclude: fmt.Sprint("c", i), Data: payload(i)}, []int64{4}); err != nil {
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
	l, now := memoryAt(1, time.Second)
	ctx := context.Background()
	first, err := l.Append(ctx, Event{Data: []byte("a")}, []int64{1})
	if err != nil {
		t.Fatal(err)
	}
	l.Append(ctx, Event{Data: []byte("b")}, []int64{1})
	*now = now.Add(time.Minute)
	l.Append(ctx, Event{Data: []byte("c")}, []int64{1}) // drops "a" and "b"
	before := first[0].Position - 1
	err = l.Tail(ctx, &before, func(uint64) {}, func([]Record) error { return nil })
	if !errors.Is(err, ErrTooOld) {
		t.Fatalf("Tail from before dropped records: %v, want ErrTooOld", err)
	}
}

// BenchmarkMemoryHistoryFootprint measures what the history of 450,000 chat messages
// holds (about what a 30 s overload at 20,000 msg/s leaves in the load tool's chat
// pairs): per message a NEW_CHAT_MESSAGE to its two users (keyed, ~100 bytes) and a
// MESSAGE_STATUS_UPDATE to its sender (~30 bytes). heap-MiB is the live Go heap the history
// adds (the collector lets the heap grow to about twice it, GOGC=100), mapped-MiB the
// byte chunks held outside the heap (chunkmem_unix.go).
func BenchmarkMemoryHistoryFootprint(b *testing.B) {
	const messages = 450_000
	message, status := make([]byte, 100), make([]byte, 30)
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		l := NewMemory(Options{})
		ctx := context.Background()
		for i := range messages {
			sender, recipient := int64(i%1000), int64(1000+i%1000)
			ev := Event{Service: "chat", Exclude: "e1a2b3-" + strconv.Itoa(i%1000), Data: message, Key: "chat.msg." + strconv.Itoa(i)}
			if _, err := l.Append(ctx, ev, []int64{sender, recipient}); err != nil {
				b.Fatal(err)
			}
			if _, err := l.Append(ctx, Event{Service: "chat", Data: status}, []int64{sender}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		mapped := 0
		for _, c := range l.bytes.chunks {
			if c.mapped {
				mapped += len(c.mem)
			}
		}
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-MiB")
		b.ReportMetric(float64(mapped)/(1<<20), "mapped-MiB")
		runtime.KeepAlive(l)
		b.StartTimer()
	}
}

// TestMemoryReleasedChunksGoBack: events larger than a chunk get chunks of their own,
// mapped outside the heap on Linux; once retention drops their records the chunks are
// released and unmapped, and the records read before still hold their bytes (Memory
// hands out copies: a slice of an unmapped chunk would crash the reader).
func TestMemoryReleasedChunksGoBack(t *testing.T) {
	l, now := memoryAt(1, time.Second)
	big := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, byteChunkSize+1000) }
	for i := range 3 {
		mustAppend(t, l, Event{Service: "chat", Exclude: fmt.Sprint("c", i), Data: big(i)}, 7)
	}
	if len(l.bytes.chunks) != 3 {
		t.Fatalf("3 events larger than a chunk use %d chunks, want 3", len(l.bytes.chunks))
	}
	chunks := slices.Clone(l.bytes.chunks)
	if runtime.GOOS == "linux" && l.bytes.mapped != 3 {
		t.Fatalf("%d of the 3 chunks are mapped on Linux, want all", l.bytes.mapped)
	}
	read, err := l.Read(context.Background(), 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Records) != 3 {
		t.Fatalf("Read holds %d records, want 3 (all newer than MaxAge)", len(read.Records))
	}
	*now = now.Add(time.Minute)
	mustAppend(t, l, named("small"), 7) // drops the three: beyond MaxEvents and older than MaxAge
	wantHistory(t, l, 7, "small")
	for i, c := range chunks {
		if c.mem != nil || c.buf != nil {
			t.Errorf("chunk %d still holds its memory after its only record was dropped", i)
		}
	}
	if runtime.GOOS == "linux" && l.bytes.mapped != 1 {
		t.Errorf("%d chunks counted as mapped after three were released, want 1 (the newest)", l.bytes.mapped)
	}
	for i, r := range read.Records {
		if !bytes.Equal(r.Data, big(i)) || r.Exclude != fmt.Sprint("c", i) {
			t.Errorf("record %d read before its chunk was released changed: %d bytes, exclude %q", i, len(r.Data), r.Exclude)
		}
	}
}

// TestMemoryChunksPastTheMappingBoundComeFromTheHeap: past maxMappedChunks new chunks are
// heap memory, read back the same, and a released mapped chunk makes room for a mapped one.
func TestMemoryChunksPastTheMappingBoundComeFromTheHeap(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("chunks are mapped on Unix; the bound is checked on Linux")
	}
	defer func(n int) { maxMappedChunks = n }(maxMappedChunks)
	maxMappedChunks = 2
	l, now := memoryAt(1, time.Second)
	big := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, byteChunkSize+1) }
	for i := range 4 {
		mustAppend(t, l, Event{Service: "chat", Data: big(i)}, int64(10+i))
	}
	var kinds []bool
	for _, c := range l.bytes.chunks {
		kinds = append(kinds, c.mapped)
	}
	if fmt.Sprint(kinds) != "[true true false false]" || l.bytes.mapped != 2 {
		t.Fatalf("chunks mapped %v (count %d), want [true true false false] (count 2)", kinds, l.bytes.mapped)
	}
	for i := range 4 {
		h, err := l.Read(context.Background(), int64(10+i), 0)
		if err != nil || len(h.Records) != 1 || !bytes.Equal(h.Records[0].Data, big(i)) {
			t.Fatalf("user %d: %d records, %v; want its event back", 10+i, len(h.Records), err)
		}
	}
	// A minute on, user 10's record is dropped (its chunk goes) and the chunks of users
	// 11–13, last written longer than MaxAge ago, are retired: their records are copied to
	// new chunks, mapped again as the mapped ones are released.
	orig := slices.Clone(l.bytes.chunks)
	*now = now.Add(time.Minute)
	mustAppend(t, l, named("small"), 10)
	for i, c := range orig {
		if c.mem != nil {
			t.Errorf("original chunk %d not released after the retire", i)
		}
	}
	mapped := 0
	for _, c := range l.bytes.chunks {
		if c.mapped {
			mapped++
		}
	}
	if mapped != l.bytes.mapped || mapped == 0 || mapped > 2 {
		t.Fatalf("after the retire %d chunks are mapped, counted %d; want the count right, 1 or 2", mapped, l.bytes.mapped)
	}
	for i := 1; i < 4; i++ {
		h, err := l.Read(context.Background(), int64(10+i), 0)
		if err != nil || len(h.Records) != 1 || !bytes.Equal(h.Records[0].Data, big(i)) {
			t.Fatalf("user %d after the retire: %d records, %v; want its event back", 10+i, len(h.Records), err)
		}
	}
}
