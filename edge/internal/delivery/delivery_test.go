package delivery

import (
	"context"
	"slices"
	"sync"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
)

type recorder struct {
	mu       sync.Mutex
	calls    map[int64][][]int64 // recipient → the ids of each of its receipts
	perCall  [][]int             // the ids of each receipt, call by call
	seen     chan int
	total    int
	userSeen bool // a call used the request's own user_id
}

func (r *recorder) MarkDelivered(_ context.Context, req *connect.Request[chatv1.MarkDeliveredRequest]) (*connect.Response[chatv1.MarkDeliveredResponse], error) {
	r.mu.Lock()
	if req.Msg.GetUserId() != 0 || len(req.Msg.GetMessageIds()) > 0 {
		r.userSeen = true
	}
	var sizes []int
	for _, rc := range req.Msg.GetReceipts() {
		r.calls[rc.GetUserId()] = append(r.calls[rc.GetUserId()], rc.GetMessageIds())
		r.total += len(rc.GetMessageIds())
		sizes = append(sizes, len(rc.GetMessageIds()))
	}
	r.perCall = append(r.perCall, sizes)
	n := r.total
	r.mu.Unlock()
	r.seen <- n
	return connect.NewResponse(&chatv1.MarkDeliveredResponse{}), nil
}

func TestCoalescesPerRecipient(t *testing.T) {
	t.Parallel()
	rec := &recorder{calls: map[int64][][]int64{}, seen: make(chan int, 100)}
	b := New(rec, Options{MaxBatch: 3})
	// Before Run, so that everything is pending at the first flush.
	for _, id := range []int64{5, 3, 5, 4, 1, 2} { // 5 twice: two tabs of the recipient
		b.Add(7, id)
	}
	b.Add(8, 9)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	for n := 0; n < 6; n = <-rec.seen {
	}
	cancel()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.userSeen {
		t.Error("a call used the request's own user_id; receipts go in receipts")
	}
	for _, sizes := range rec.perCall {
		n := 0
		for _, k := range sizes {
			n += k
		}
		if n > 3 {
			t.Errorf("a call held receipts of %v ids: want at most 3 in all", sizes)
		}
	}
	var got []int64
	for _, ids := range rec.calls[7] {
		got = append(got, ids...)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int64{1, 2, 3, 4, 5}) {
		t.Errorf("user 7: got %v, want 1-5 once each", got)
	}
	if len(rec.calls[8]) != 1 || !slices.Equal(rec.calls[8][0], []int64{9}) {
		t.Errorf("user 8: got %v, want [[9]]", rec.calls[8])
	}
}

func TestBounded(t *testing.T) {
	t.Parallel()
	b := New(&recorder{calls: map[int64][][]int64{}, seen: make(chan int, 100)}, Options{MaxPending: 10})
	for i := int64(0); i < 100; i++ {
		b.Add(1, i)
	}
	calls, dropped := b.take()
	n := 0
	for _, c := range calls {
		for _, rc := range c.receipts {
			n += len(rc.GetMessageIds())
		}
	}
	if n != 10 || dropped != 90 {
		t.Errorf("got %d kept and %d dropped, want 10 and 90", n, dropped)
	}
}

// gate is a Marker whose calls all wait until want of them are in flight at once.
type gate struct {
	want     int
	mu       sync.Mutex
	inflight int
	open     chan struct{}
	done     chan int64
}

func (g *gate) MarkDelivered(_ context.Context, req *connect.Request[chatv1.MarkDeliveredRequest]) (*connect.Response[chatv1.MarkDeliveredResponse], error) {
	g.mu.Lock()
	g.inflight++
	if g.inflight == g.want {
		close(g.open)
	}
	g.mu.Unlock()
	<-g.open
	for _, rc := range req.Msg.GetReceipts() {
		g.done <- rc.GetUserId()
	}
	return connect.NewResponse(&chatv1.MarkDeliveredResponse{}), nil
}

// TestCallsOverlap: when a flush needs several calls (more than MaxBatch ids), they run
// together (up to Workers). With fewer at once the gate never opens and the test hangs.
func TestCallsOverlap(t *testing.T) {
	t.Parallel()
	const recipients = DefaultWorkers
	g := &gate{want: recipients, open: make(chan struct{}), done: make(chan int64, recipients)}
	b := New(g, Options{MaxBatch: 1})
	for u := int64(1); u <= recipients; u++ {
		b.Add(u, 100+u)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	seen := map[int64]bool{}
	for len(seen) < recipients {
		seen[<-g.done] = true
	}
	cancel()
	<-done
}

// TestOneCallPerFlush: receipts of many recipients gathered in one interval go in one
// call, a receipt each, so the chat service commits them together.
func TestOneCallPerFlush(t *testing.T) {
	t.Parallel()
	const recipients = 300
	rec := &recorder{calls: map[int64][][]int64{}, seen: make(chan int, 100)}
	b := New(rec, Options{})
	for u := int64(1); u <= recipients; u++ {
		b.Add(u, 1000+u)
		b.Add(u, 2000+u)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	for n := 0; n < 2*recipients; n = <-rec.seen {
	}
	cancel()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.perCall) != 1 || len(rec.perCall[0]) != recipients {
		t.Fatalf("got %d calls (receipts per call %v), want 1 call of %d receipts", len(rec.perCall), rec.perCall, recipients)
	}
	for u := int64(1); u <= recipients; u++ {
		if got := rec.calls[u]; len(got) != 1 || !slices.Equal(got[0], []int64{1000 + u, 2000 + u}) {
			t.Fatalf("user %d: got %v, want one receipt [%d %d]", u, got, 1000+u, 2000+u)
		}
	}
}
