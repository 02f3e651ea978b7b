package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/eventlog/logtest"
)

// natsURL returns the CI's NATS (NATS_TEST_URL) or an embedded server with JetStream.
// (bustest.NATSURL embeds a server without JetStream.)
func natsURL(tb testing.TB) string {
	tb.Helper()
	if url := os.Getenv("NATS_TEST_URL"); url != "" {
		return url
	}
	return startNATS(tb, -1, tb.TempDir()).ClientURL()
}

// startNATS starts an embedded NATS server with JetStream on port (-1: a free one) storing
// in dir, shut down when the test ends.
func startNATS(tb testing.TB, port int, dir string) *server.Server {
	tb.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatalf("embedded NATS: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("embedded NATS not ready")
	}
	tb.Cleanup(srv.Shutdown)
	return srv
}

func connect(tb testing.TB, url string) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatalf("connect to %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// testStream returns options naming a stream and subjects of this test alone, and deletes
// the stream when the test ends.
func testStream(tb testing.TB, url string) eventlog.JetStreamOptions {
	tb.Helper()
	o := streamNames()
	tb.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			tb.Logf("delete stream %s: %v", o.Stream, err)
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, o.Stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			tb.Logf("delete stream %s: %v", o.Stream, err)
		}
	})
	return o
}

// streamNames returns options naming a stream and subjects no other test uses.
func streamNames() eventlog.JetStreamOptions {
	id := nuid.Next()
	return eventlog.JetStreamOptions{Stream: "EVT_" + id, Subject: "evt." + id + ".user"}
}

func openJS(tb testing.TB, url string, opt eventlog.Options, jsopt eventlog.JetStreamOptions) *eventlog.JetStream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := eventlog.OpenJetStream(ctx, connect(tb, url), opt, jsopt)
	if err != nil {
		tb.Fatalf("OpenJetStream: %v", err)
	}
	return l
}

func TestJetStream(t *testing.T) {
	url := natsURL(t)
	// Every open is one process: its own connection and cache, on the test's stream.
	logtest.Run(t, func(t *testing.T, opt eventlog.Options) func() eventlog.Log {
		jsopt := testStream(t, url)
		return func() eventlog.Log { return openJS(t, url, opt, jsopt) }
	}, false)
}

func TestJetStreamStreamLimits(t *testing.T) {
	url := natsURL(t)
	jsopt := testStream(t, url)
	l := openJS(t, url, eventlog.Options{MaxEvents: 7}, jsopt)
	defer l.Close()
	cfg := streamConfig(t, url, jsopt.Stream)
	checks := []struct {
		name      string
		got, want any
	}{
		{"subjects", strings.Join(cfg.Subjects, ","), jsopt.Subject + ".*"},
		{"storage", cfg.Storage, jetstream.FileStorage},
		{"retention", cfg.Retention, jetstream.LimitsPolicy},
		{"replicas", cfg.Replicas, 1},
		{"max msgs per subject", cfg.MaxMsgsPerSubject, int64(7)},
		{"max age", cfg.MaxAge, time.Duration(0)},
		{"max msgs", cfg.MaxMsgs, int64(-1)},
		{"max bytes", cfg.MaxBytes, int64(-1)},
		{"discard", cfg.Discard, jetstream.DiscardOld},
		{"duplicates", cfg.Duplicates, eventlog.DedupeWindow},
		{"deny delete", cfg.DenyDelete, true},
		{"deny purge", cfg.DenyPurge, true},
		{"allow direct", cfg.AllowDirect, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("stream %s: %s = %v, want %v", jsopt.Stream, c.name, c.got, c.want)
		}
	}
	// A process started with another RESUME_MAX_EVENTS updates the stream.
	l2 := openJS(t, url, eventlog.Options{MaxEvents: 9}, jsopt)
	defer l2.Close()
	if got := streamConfig(t, url, jsopt.Stream).MaxMsgsPerSubject; got != 9 {
		t.Errorf("after reopening with MaxEvents 9: max msgs per subject = %d, want 9", got)
	}
}

// TestJetStreamOpenUpdatesOnlyAChangedStream: a process opening the log on a stream that
// already has its limits sends no update (the server's stream-updated advisory stays
// silent); one with other limits updates it.
func TestJetStreamOpenUpdatesOnlyAChangedStream(t *testing.T) {
	url := natsURL(t)
	jsopt := testStream(t, url)
	openJS(t, url, eventlog.Options{MaxEvents: 7}, jsopt).Close()
	updates := make(chan *nats.Msg, 10)
	nc := connect(t, url)
	sub, err := nc.ChanSubscribe("$JS.EVENT.ADVISORY.STREAM.UPDATED."+jsopt.Stream, updates)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		openJS(t, url, eventlog.Options{MaxEvents: 7}, jsopt).Close()
	}
	openJS(t, url, eventlog.Options{MaxEvents: 9}, jsopt).Close()
	select {
	case <-updates:
	case <-time.After(10 * time.Second):
		t.Fatal("no stream update advisory after opening with MaxEvents 9")
	}
	// Advisories arrive in order: any from the three unchanged opens came before.
	select {
	case m := <-updates:
		t.Errorf("a second stream update advisory: %s", m.Data)
	case <-time.After(200 * time.Millisecond):
	}
	if got := streamConfig(t, url, jsopt.Stream).MaxMsgsPerSubject; got != 9 {
		t.Errorf("max msgs per subject = %d, want 9", got)
	}
}

func streamConfig(t *testing.T, url, stream string) jetstream.StreamConfig {
	t.Helper()
	js, _ := jetstream.New(connect(t, url))
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	return s.CachedInfo().Config
}

func TestJetStreamBadOptions(t *testing.T) {
	nc := connect(t, natsURL(t))
	for _, c := range []struct {
		opt  eventlog.JetStreamOptions
		want string
	}{
		{eventlog.JetStreamOptions{Stream: "A.B"}, `stream name "A.B"`},
		{eventlog.JetStreamOptions{Subject: "charla.*"}, `subject prefix "charla.*"`},
		{eventlog.JetStreamOptions{Subject: "charla..user"}, `subject prefix "charla..user"`},
		{eventlog.JetStreamOptions{Replicas: 7}, "replicas 7"},
		{eventlog.JetStreamOptions{CacheSize: -1}, "cache size -1"},
	} {
		_, err := eventlog.OpenJetStream(context.Background(), nc, eventlog.Options{}, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("OpenJetStream(%+v) = %v, want an error naming %s", c.opt, err, c.want)
		}
	}
}

func TestJetStreamReopenContinuesCounter(t *testing.T) {
	url := natsURL(t)
	jsopt := testStream(t, url)
	ctx := context.Background()
	first := openJS(t, url, eventlog.Options{}, jsopt)
	for i := range 3 {
		if _, err := first.Append(ctx, eventlog.Event{Service: "chat", Data: fmt.Appendf(nil, "%d", i)}, []int64{1, 2}); err != nil {
			t.Fatal(err)
		}
	}
	first.Close()
	if _, err := first.Append(ctx, eventlog.Event{Service: "chat"}, []int64{1}); err == nil {
		t.Fatal("Append after Close succeeded")
	}

	again := openJS(t, url, eventlog.Options{}, jsopt) // a new process: nothing cached
	defer again.Close()
	recs, err := again.Append(ctx, eventlog.Event{Service: "notify", Data: []byte("3")}, []int64{2, 1, 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		user int64
		seq  uint64
	}{{2, 4}, {1, 4}, {3, 1}} {
		if recs[i].UserID != want.user || recs[i].Seq != want.seq {
			t.Errorf("record %d after reopening: user %d seq %d, want user %d seq %d", i, recs[i].UserID, recs[i].Seq, want.user, want.seq)
		}
	}
	h, err := again.Read(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Complete || h.LastSeq != 4 || len(h.Records) != 4 || string(h.Records[3].Data) != "3" || h.Records[3].Service != "notify" {
		t.Fatalf("user 1 after reopening: %+v; want seqs 1..4, the last from notify", h)
	}
}

// Three processes append group events to overlapping users in different orders: every
// user's seqs are consecutive, every event is stored once per user, and a tail of the whole
// log sees each user's records in seq order.
func TestJetStreamGroupAppendsFromSeveralProcesses(t *testing.T) {
	url := natsURL(t)
	jsopt := testStream(t, url)
	logs := []*eventlog.JetStream{openJS(t, url, eventlog.Options{}, jsopt), openJS(t, url, eventlog.Options{}, jsopt), openJS(t, url, eventlog.Options{}, jsopt)}
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	orders := [][]int64{{1, 2, 3}, {3, 2, 1}, {2, 3, 1}}
	const goroutines, each = 6, 20
	errs := make(chan error, goroutines)
	for g := range goroutines {
		go func() {
			l := logs[g%len(logs)]
			var err error
			for i := range each {
				users := append(append([]int64(nil), orders[(g+i)%len(orders)]...), int64(10+g))
				if _, err = l.Append(context.Background(), eventlog.Event{Service: "chat", Data: fmt.Appendf(nil, "g%d-%d", g, i)}, users); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range goroutines {
		if err := <-errs; err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	for _, u := range []int64{1, 2, 3, 10} {
		want := goroutines * each
		if u == 10 {
			want = each
		}
		h, err := logs[1].Read(context.Background(), u, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Complete || h.LastSeq != uint64(want) || len(h.Records) != want {
			t.Fatalf("user %d: complete %v, last %d, %d records; want complete, %d, %d", u, h.Complete, h.LastSeq, len(h.Records), want, want)
		}
		seen := map[string]bool{}
		for i, r := range h.Records {
			if r.Seq != uint64(i+1) || seen[string(r.Data)] || (i > 0 && r.Position <= h.Records[i-1].Position) {
				t.Fatalf("user %d record %d: seq %d position %d data %s (seen before: %v)", u, i, r.Seq, r.Position, r.Data, seen[string(r.Data)])
			}
			seen[string(r.Data)] = true
		}
	}
	zero := uint64(0)
	c, stop := tailFrom(t, logs[2], &zero)
	got := c.waitFor(t, 3*goroutines*each+goroutines*each)
	next := map[int64]uint64{}
	for _, r := range got {
		next[r.UserID]++
		if r.Seq != next[r.UserID] {
			t.Fatalf("tail: user %d seq %d after %d", r.UserID, r.Seq, next[r.UserID]-1)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestJetStreamTailBeforeOldestHeld(t *testing.T) {
	url := natsURL(t)
	l := openJS(t, url, eventlog.Options{MaxEvents: 1}, testStream(t, url))
	defer l.Close()
	ctx := context.Background()
	var recs []eventlog.Record
	for range 2 {
		r, err := l.Append(ctx, eventlog.Event{Service: "chat"}, []int64{1})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r...)
	}
	// The first record is gone (one per user is held): a tail cannot start before it.
	before := recs[0].Position - 1
	err := l.Tail(ctx, &before, func(uint64) {}, func([]eventlog.Record) error { return nil })
	if !errors.Is(err, eventlog.ErrTooOld) {
		t.Fatalf("Tail after %d with the oldest held at %d: %v, want ErrTooOld", before, recs[1].Position, err)
	}
	// Right after the removed one is fine: the tail passes the held record.
	at := recs[0].Position
	c, stop := tailFrom(t, l, &at)
	if got := c.waitFor(t, 1); got[0].Position != recs[1].Position || got[0].Seq != 2 {
		t.Fatalf("tail after %d got %+v, want the record at %d (seq 2)", at, got[0], recs[1].Position)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestJetStreamMalformedRecord(t *testing.T) {
	url := natsURL(t)
	jsopt := testStream(t, url)
	l := openJS(t, url, eventlog.Options{}, jsopt)
	defer l.Close()
	ctx := context.Background()
	// A foreign publisher writes to a user's subject without the record headers.
	js, _ := jetstream.New(connect(t, url))
	if _, err := js.Publish(ctx, jsopt.Subject+".5", []byte("junk")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(ctx, 5, 0); !errors.Is(err, eventlog.ErrMalformed) || !strings.Contains(err.Error(), eventlog.HeaderSeq) {
		t.Errorf("Read of a user whose newest message is junk: %v; want ErrMalformed naming %s", err, eventlog.HeaderSeq)
	}
	if _, err := l.Append(ctx, eventlog.Event{Service: "chat"}, []int64{5}); !errors.Is(err, eventlog.ErrMalformed) {
		t.Errorf("Append after junk: %v; want ErrMalformed", err)
	}
}

func TestJetStreamSurvivesNATSRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startNATS(t, -1, dir)
	port := srv.Addr().(*net.TCPAddr).Port
	url := srv.ClientURL()
	jsopt := streamNames() // the server and its store go with the test
	l := openJS(t, url, eventlog.Options{}, jsopt)
	defer l.Close()
	ctx := context.Background()

	c, stopTail := tailAll(t, l)
	for i := range 3 {
		if _, err := l.Append(ctx, eventlog.Event{Service: "chat", Data: fmt.Appendf(nil, "%d", i)}, []int64{1, 2}); err != nil {
			t.Fatal(err)
		}
	}
	c.waitFor(t, 6)

	srv.Shutdown()
	srv.WaitForShutdown()
	startNATS(t, port, dir)

	// The appender that was connected keeps working: same seqs, history held.
	recs, err := l.Append(ctx, eventlog.Event{Service: "chat", Data: []byte("3")}, []int64{1, 2})
	if err != nil {
		t.Fatalf("Append after the restart: %v", err)
	}
	if recs[0].Seq != 4 || recs[1].Seq != 4 {
		t.Fatalf("seqs after the restart: %d, %d; want 4, 4", recs[0].Seq, recs[1].Seq)
	}
	h, err := l.Read(ctx, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Complete || h.LastSeq != 4 || len(h.Records) != 4 || string(h.Records[0].Data) != "0" {
		t.Fatalf("user 2 after the restart: %+v; want seqs 1..4", h)
	}
	// The tail that ran across the restart got the new records, nothing twice.
	got := c.waitFor(t, 8)
	for i, r := range got {
		if want := uint64(i/2 + 1); r.Seq != want || r.UserID != int64(i%2+1) {
			t.Fatalf("tail record %d: user %d seq %d; want user %d seq %d", i, r.UserID, r.Seq, i%2+1, want)
		}
	}
	if err := stopTail(); err != nil {
		t.Fatalf("tail across the restart: %v", err)
	}
}

// tailCollector gathers what a tail passes.
type tailCollector struct {
	recs atomic.Pointer[[]eventlog.Record]
}

func tailAll(t *testing.T, l eventlog.Log) (*tailCollector, func() error) {
	t.Helper()
	return tailFrom(t, l, nil)
}

func tailFrom(t *testing.T, l eventlog.Log, after *uint64) (*tailCollector, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &tailCollector{}
	c.recs.Store(&[]eventlog.Record{})
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- l.Tail(ctx, after, func(uint64) { close(started) }, func(rs []eventlog.Record) error {
			all := append(append([]eventlog.Record(nil), *c.recs.Load()...), rs...)
			c.recs.Store(&all)
			return nil
		})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Tail ended before it started: %v", err)
	}
	return c, func() error { cancel(); return <-done }
}

func (c *tailCollector) waitFor(t *testing.T, n int) []eventlog.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(*c.recs.Load()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := *c.recs.Load(); len(got) != n {
		t.Fatalf("tail got %d records, want %d", len(got), n)
	}
	return *c.recs.Load()
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	l, err := eventlog.Open(ctx, bus.NewInProcess(), eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.(*eventlog.Memory); !ok {
		t.Errorf("Open(in-process bus) = %T, want *eventlog.Memory", l)
	}
	l.Close()

	// Always an embedded server: Open uses the default stream, which a shared server may hold.
	b, err := bus.ConnectNATS(startNATS(t, -1, t.TempDir()).ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	l, err = eventlog.Open(ctx, b, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	js, ok := l.(*eventlog.JetStream)
	if !ok {
		t.Fatalf("Open(NATS bus) = %T, want *eventlog.JetStream", l)
	}
	if js.Stream() != eventlog.DefaultStream {
		t.Errorf("Open(NATS bus) uses stream %s, want %s", js.Stream(), eventlog.DefaultStream)
	}
	if recs, err := l.Append(ctx, eventlog.Event{Service: "chat"}, []int64{1}); err != nil || recs[0].Seq != 1 {
		t.Errorf("Append on the opened log: %v %v; want seq 1", recs, err)
	}
}

// BenchmarkAppend measures Append of one record to two users, like a chat message.
func BenchmarkAppend(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchAppend(b, eventlog.NewMemory(eventlog.Options{})) })
	url := natsURL(b)
	b.Run("jetstream", func(b *testing.B) {
		l := openJS(b, url, eventlog.Options{}, testStream(b, url))
		defer l.Close()
		benchAppend(b, l)
	})
}

func benchAppend(b *testing.B, l eventlog.Log) {
	const users = 1000
	data := make([]byte, 200)
	ev := eventlog.Event{Service: "chat", Exclude: "conn", Data: data}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	}
	b.Run("sequential", func(b *testing.B) {
		i := 0
		for b.Loop() {
			u := int64(i % users)
			if _, err := l.Append(context.Background(), ev, []int64{u, u + users}); err != nil {
				b.Fatal(err)
			}
			i++
		}
		report(b)
	})
	b.Run("parallel", func(b *testing.B) {
		var next atomic.Int64
		b.SetParallelism(8) // appends wait on the network: more of them than cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				u := next.Add(1) % users
				if _, err := l.Append(context.Background(), ev, []int64{u, u + users}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		report(b)
	})
}

// TestStreamOptions: EVENTS_STREAM names the stream; any stream but the default gets
// subjects of its own, and a name JetStream would refuse is an error naming it.
func TestStreamOptions(t *testing.T) {
	for _, tc := range []struct {
		name, wantStream, wantSubject, wantErr string
	}{
		{name: "", wantStream: "", wantSubject: ""},
		{name: eventlog.DefaultStream, wantStream: eventlog.DefaultStream, wantSubject: ""},
		{name: "CHARLA_LOAD_1A", wantStream: "CHARLA_LOAD_1A", wantSubject: "charla.events.CHARLA_LOAD_1A"},
		{name: "a.b", wantErr: `stream name "a.b"`},
		{name: "a b", wantErr: `stream name "a b"`},
	} {
		o, err := eventlog.StreamOptions(tc.name)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("StreamOptions(%q): err %v, want one containing %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || o.Stream != tc.wantStream || o.Subject != tc.wantSubject {
			t.Errorf("StreamOptions(%q) = %+v, %v; want stream %q subject %q", tc.name, o, err, tc.wantStream, tc.wantSubject)
		}
	}
}

// TestStreamsKeepApart: two logs on one server under different EVENTS_STREAM names do
// not share histories (a load run's users do not inherit another run's seqs).
func TestStreamsKeepApart(t *testing.T) {
	url := natsURL(t)
	nc := connect(t, url)
	ctx := context.Background()
	// Names of this run alone (CI's NATS server outlives the test), deleted at the end.
	nameA, nameB := testStream(t, url).Stream, testStream(t, url).Stream
	open := func(name string) *eventlog.JetStream {
		o, err := eventlog.StreamOptions(name)
		if err != nil {
			t.Fatal(err)
		}
		l, err := eventlog.OpenJetStream(ctx, nc, eventlog.Options{}, o)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	a, b := open(nameA), open(nameB)
	for range 3 {
		if _, err := a.Append(ctx, eventlog.Event{Service: "chat", Data: []byte("x")}, []int64{7}); err != nil {
			t.Fatal(err)
		}
	}
	if seq, err := a.LastSeq(ctx, 7); err != nil || seq != 3 {
		t.Fatalf("stream A: last seq %d, %v; want 3", seq, err)
	}
	if seq, err := b.LastSeq(ctx, 7); err != nil || seq != 0 {
		t.Fatalf("stream B: last seq %d, %v; want 0 (nothing of A's)", seq, err)
	}
}
