package presence

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
)

// gate holds the first call that passes it: entered is closed when it arrives, and it
// goes on once release is closed; the later calls pass.
type gate struct {
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) pass() {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
}

// holdFirstMany holds the first ConnectMany until released; the later ones pass.
type holdFirstMany struct {
	*fakeClient
	*gate
}

func (h *holdFirstMany) ConnectMany(ctx context.Context, r *connect.Request[presencev1.ConnectManyRequest]) (*connect.Response[presencev1.ConnectManyResponse], error) {
	h.pass()
	return h.fakeClient.ConnectMany(ctx, r)
}

// waitInBatcher waits until n goroutines whose stacks hold marker (the test's own
// function) wait in the batcher's Do: each has its Connect queued by then, since Do
// queues before it waits. A bound on the wait, not a speed check.
func waitInBatcher(t *testing.T, marker string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		for {
			k := runtime.Stack(buf, true)
			if k < len(buf) {
				buf = buf[:k]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		got := 0
		for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
			if bytes.Contains(g, []byte("coalesce.(*Batcher[")) && bytes.Contains(g, []byte("]).Do(")) && bytes.Contains(g, []byte(marker)) {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections wait in the batcher, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
		buf = buf[:cap(buf)]
	}
}

// TestConnectsShareBatches: the connections that open while a ConnectMany is in flight go
// out together in the next one, and each gets its own outcome (its last seq, or its own
// error, which leaves it owed). Not parallel: it counts goroutines by their stacks.
func TestConnectsShareBatches(t *testing.T) {
	f := newFake()
	f.reject = map[string]connect.Code{"bad": connect.CodeInvalidArgument}
	h := &holdFirstMany{fakeClient: f, gate: newGate()}
	r := New(h, Options{EdgeID: "e1", after: newBeatClock().after})
	run(t, r)

	type outcome struct {
		last uint64
		ok   bool
	}
	const n = 20
	ids := []string{"first"}
	for i := range n - 1 {
		ids = append(ids, fmt.Sprintf("c%d", i))
	}
	ids = append(ids, "bad")
	outcomes := make([]outcome, len(ids))
	var wg sync.WaitGroup
	connected := func(i int) {
		wg.Go(func() {
			last, ok := r.Connected(context.Background(), Conn{UserID: int64(i + 1), ConnID: ids[i]}, true)
			outcomes[i] = outcome{last, ok}
		})
	}
	connected(0)
	<-h.entered // the first batch is in flight, held
	for i := 1; i < len(ids); i++ {
		connected(i)
	}
	waitInBatcher(t, "TestConnectsShareBatches", len(ids)) // the first one, and n queued
	close(h.release)
	wg.Wait()

	f.mu.Lock()
	batches, singles := slices.Clone(f.batches), f.singles
	f.mu.Unlock()
	if want := []int{1, n}; !slices.Equal(batches, want) || singles != 0 {
		t.Errorf("ConnectMany sizes %v and %d Connects, want %v and none", batches, singles, want)
	}
	for i, o := range outcomes {
		want := outcome{7, true}
		if ids[i] == "bad" {
			want = outcome{}
		}
		if o != want {
			t.Errorf("Connected(%s) = %+v, want %+v", ids[i], o, want)
		}
	}
	r.mu.Lock()
	owed := r.owed
	r.mu.Unlock()
	if !owed {
		t.Error("the rejected connection is not owed")
	}
	for _, id := range ids {
		if recorded := isRecorded(r, id); recorded != (id != "bad") {
			t.Errorf("connection %s: recorded %v", id, recorded)
		}
	}
}

// TestConnectErrorsAsConnect: an error in a ConnectMany result reaches the reporter as
// the Connect error it stands for (code and message), and a failure of the whole call
// fails each connection with it.
func TestConnectErrorsAsConnect(t *testing.T) {
	t.Parallel()
	res := itemResult[*presencev1.ConnectManyResult, presencev1.ConnectResponse](&presencev1.ConnectManyResult{ErrorCode: "not_found", ErrorMessage: "edge holds no lease; register again"})
	if connect.CodeOf(res.Err) != connect.CodeNotFound || res.Err.(*connect.Error).Message() != "edge holds no lease; register again" {
		t.Errorf("not_found result: got %v", res.Err)
	}
	res = itemResult[*presencev1.ConnectManyResult, presencev1.ConnectResponse](&presencev1.ConnectManyResult{ErrorCode: "no_such_code", ErrorMessage: "m"})
	if connect.CodeOf(res.Err) != connect.CodeUnknown {
		t.Errorf("unknown code: got %v, want unknown", res.Err)
	}
	res = itemResult[*presencev1.ConnectManyResult, presencev1.ConnectResponse](&presencev1.ConnectManyResult{})
	if res.Err != nil || res.Value == nil {
		t.Errorf("empty success: got %+v, want an empty response", res)
	}

	f := newFake()
	r := New(f, Options{EdgeID: "e1", after: newBeatClock().after})
	run(t, r)
	f.set(func(f *fakeClient) { f.failCalls = true })
	if _, ok := r.Connected(context.Background(), Conn{UserID: 1, ConnID: "c1"}, true); ok {
		t.Error("Connected while presence is away: ok, want not")
	}
	if got := <-f.connects; got != "failed c1" {
		t.Errorf("connect while away: got %q", got)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.owed {
		t.Error("the failed connection is not owed")
	}
}

// TestConnectManyFallback: a presence service without ConnectMany (unimplemented, during
// a rolling upgrade) gets one Connect per connection, and is not asked ConnectMany again
// until singleRetry has passed.
func TestConnectManyFallback(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.noMany = true
	r := New(f, Options{EdgeID: "e1", after: newBeatClock().after})
	run(t, r)
	ctx := context.Background()
	for _, id := range []string{"c1", "c2", "c3"} {
		if last, ok := r.Connected(ctx, Conn{UserID: 1, ConnID: id}, true); !ok || last != 7 {
			t.Errorf("Connected(%s) = %d, %v; want 7, true", id, last, ok)
		}
		if got := <-f.connects; got != id {
			t.Errorf("connect: got %q, want %q", got, id)
		}
	}
	f.mu.Lock()
	if f.manyTries != 1 || f.singles != 3 {
		t.Errorf("%d ConnectMany and %d Connect calls, want 1 (unimplemented) and 3", f.manyTries, f.singles)
	}
	if !f.conns["c1"] || !f.conns["c2"] || !f.conns["c3"] {
		t.Errorf("presence holds %v, want c1, c2 and c3", f.conns)
	}
	// The service has been upgraded, and singleRetry has passed: ConnectMany again.
	f.noMany = false
	f.mu.Unlock()
	r.singleUntil.Store(time.Now().Add(-time.Second).UnixMilli())
	if last, ok := r.Connected(ctx, Conn{UserID: 1, ConnID: "c4"}, true); !ok || last != 7 {
		t.Errorf("Connected(c4) = %d, %v; want 7, true", last, ok)
	}
	<-f.connects
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.manyTries != 2 || f.singles != 3 {
		t.Errorf("%d ConnectMany and %d Connect calls after the retry, want 2 and 3", f.manyTries, f.singles)
	}
}
