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
	mu    sync.Mutex
	calls map[int64][][]int64
	seen  chan int
	total int
}

func (r *recorder) MarkDelivered(_ context.Context, req *connect.Request[chatv1.MarkDeliveredRequest]) (*connect.Response[chatv1.MarkDeliveredResponse], error) {
	r.mu.Lock()
	r.calls[req.Msg.GetUserId()] = append(r.calls[req.Msg.GetUserId()], req.Msg.GetMessageIds())
	r.total += len(req.Msg.GetMessageIds())
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
	var got []int64
	for _, ids := range rec.calls[7] {
		if len(ids) > 3 {
			t.Errorf("batch %v: want at most 3 ids", ids)
		}
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
	batches, dropped := b.take()
	n := 0
	for _, bt := range batches {
		n += len(bt.ids)
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
	g.done <- req.Msg.GetUserId()
	return connect.NewResponse(&chatv1.MarkDeliveredResponse{}), nil
}

// TestCallsOverlap: a flush's calls run together (up to Workers), so the chat service can
// fold them into one commit. With fewer at once the gate never opens and the test hangs.
func TestCallsOverlap(t *testing.T) {
	t.Parallel()
	const recipients = DefaultWorkers
	g := &gate{want: recipients, open: make(chan struct{}), done: make(chan int64, recipients)}
	b := New(g, Options{})
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
