package coalesce

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a batch call that answers each number with its double (odd numbers with an
// error of their own), records every batch, and can be held so that calls queue up.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	hold    chan struct{} // when non-nil, each call waits until it is closed
	entered chan struct{} // receives one value per call, when set
}

func (r *recorder) call(_ context.Context, reqs []int) ([]Result[int], error) {
	r.mu.Lock()
	r.batches = append(r.batches, append([]int(nil), reqs...))
	hold, entered := r.hold, r.entered
	r.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if hold != nil {
		<-hold
	}
	out := make([]Result[int], len(reqs))
	for i, n := range reqs {
		if n%2 != 0 {
			out[i].Err = fmt.Errorf("odd %d", n)
			continue
		}
		out[i].Value = 2 * n
	}
	return out, nil
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []int
	for _, b := range r.batches {
		s = append(s, len(b))
	}
	return s
}

func TestSingleCallGoesAloneAndAtOnce(t *testing.T) {
	r := &recorder{}
	b := New(r.call, Options{})
	defer b.wg.Wait()
	v, err := b.Do(context.Background(), 4)
	if err != nil || v != 8 {
		t.Fatalf("Do(4) = %d, %v; want 8, nil", v, err)
	}
	if _, err := b.Do(context.Background(), 3); err == nil || err.Error() != "odd 3" {
		t.Fatalf("Do(3) error = %v; want its own error, odd 3", err)
	}
	if got := r.sizes(); len(got) != 2 || got[0] != 1 || got[1] != 1 {
		t.Fatalf("batch sizes %v; want [1 1]", got)
	}
}

// TestCallsQueuedDuringABatchGoTogether holds the first batch in flight, queues more
// calls, and checks that they go out as one next batch, each answered with its own result.
func TestCallsQueuedDuringABatchGoTogether(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), entered: make(chan struct{}, 10)}
	b := New(r.call, Options{})
	defer b.wg.Wait()

	results := make(chan string, 11)
	do := func(n int) {
		v, err := b.Do(context.Background(), n)
		results <- fmt.Sprintf("%d:%d:%v", n, v, err)
	}
	go do(100)
	<-r.entered // the first batch is in flight
	for n := 1; n <= 10; n++ {
		go do(n)
	}
	waitQueued(t, b, 10)
	close(r.hold)
	got := map[string]bool{}
	for range 11 {
		got[<-results] = true
	}
	for n := 1; n <= 10; n++ {
		want := fmt.Sprintf("%d:%d:<nil>", n, 2*n)
		if n%2 != 0 {
			want = fmt.Sprintf("%d:0:odd %d", n, n)
		}
		if !got[want] {
			t.Errorf("no answer %q among %v", want, got)
		}
	}
	if sizes := r.sizes(); len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 10 {
		t.Fatalf("batch sizes %v; want [1 10]", sizes)
	}
}

func TestMaxBoundsABatch(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), entered: make(chan struct{}, 10)}
	b := New(r.call, Options{Max: 4})
	defer b.wg.Wait()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = b.Do(context.Background(), 0) }()
	<-r.entered
	for n := 1; n <= 9; n++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = b.Do(context.Background(), n) }()
	}
	waitQueued(t, b, 9)
	close(r.hold)
	wg.Wait()
	if sizes := r.sizes(); fmt.Sprint(sizes) != "[1 4 4 1]" {
		t.Fatalf("batch sizes %v; want [1 4 4 1]", sizes)
	}
}

func TestFailedBatchFailsEachCaller(t *testing.T) {
	boom := errors.New("boom")
	b := New(func(context.Context, []int) ([]Result[int], error) { return nil, boom }, Options{})
	defer b.wg.Wait()
	if _, err := b.Do(context.Background(), 2); !errors.Is(err, boom) {
		t.Fatalf("Do error = %v; want the batch's error", err)
	}
}

func TestWrongNumberOfResultsIsAnError(t *testing.T) {
	b := New(func(context.Context, []int) ([]Result[int], error) { return nil, nil }, Options{})
	defer b.wg.Wait()
	if _, err := b.Do(context.Background(), 2); err == nil {
		t.Fatal("Do succeeded on a batch answered with no result")
	}
}

// TestCallerWhoseContextEndsStopsWaiting: a queued caller that gives up returns at once
// and is left out of the next batch; the batch's own context is not cancelled by it.
func TestCallerWhoseContextEndsStopsWaiting(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), entered: make(chan struct{}, 10)}
	b := New(r.call, Options{})
	defer b.wg.Wait()
	first := make(chan error, 1)
	go func() { _, err := b.Do(context.Background(), 2); first <- err }()
	<-r.entered

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { _, err := b.Do(ctx, 4); gaveUp <- err }()
	stays := make(chan error, 1)
	go func() { _, err := b.Do(context.Background(), 6); stays <- err }()
	waitQueued(t, b, 2)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v; want context.Canceled", err)
	}
	close(r.hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-stays; err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if fmt.Sprint(r.batches) != "[[2] [6]]" {
		t.Fatalf("batches %v; want [[2] [6]] (the cancelled 4 left out)", r.batches)
	}
}

func TestBatchContextOutlivesItsFirstCaller(t *testing.T) {
	var batchErr error
	entered, release := make(chan struct{}), make(chan struct{})
	b := New(func(ctx context.Context, reqs []int) ([]Result[int], error) {
		close(entered)
		<-release
		batchErr = ctx.Err()
		return make([]Result[int], len(reqs)), nil
	}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _, _ = b.Do(ctx, 2) }()
	<-entered
	cancel()
	<-done
	close(release)
	b.wg.Wait()
	if batchErr != nil {
		t.Fatalf("the batch's context ended with its caller: %v", batchErr)
	}
}

// TestBatchSpanLinksItsCallers: each batch has a span, a child of its first caller's span
// and linked to the others' (telemetry.StartBatchSpan, on the global tracer provider).
func TestBatchSpanLinksItsCallers(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(prev)
	tracer := tp.Tracer("test")

	r := &recorder{hold: make(chan struct{}), entered: make(chan struct{}, 10)}
	b := New(r.call, Options{Name: "test.batch"})
	defer b.wg.Wait()
	go func() { _, _ = b.Do(context.Background(), 0) }()
	<-r.entered
	var wg sync.WaitGroup
	var callers []string
	for n := 1; n <= 3; n++ {
		ctx, span := tracer.Start(context.Background(), fmt.Sprint("caller", n))
		callers = append(callers, span.SpanContext().SpanID().String())
		wg.Add(1)
		go func() { defer wg.Done(); defer span.End(); _, _ = b.Do(ctx, 2*n) }()
	}
	waitQueued(t, b, 3)
	close(r.hold)
	wg.Wait()
	b.wg.Wait()

	var batches int
	var joined []string // the parent and the links of the batch span
	for _, s := range rec.Ended() {
		if s.Name() != "test.batch" {
			continue
		}
		batches++
		joined = append(joined, s.Parent().SpanID().String())
		for _, l := range s.Links() {
			joined = append(joined, l.SpanContext.SpanID().String())
		}
	}
	if batches != 1 {
		t.Fatalf("%d batch spans; want 1 (the untraced first batch has none)", batches)
	}
	if fmt.Sprint(slices.Sorted(slices.Values(joined))) != fmt.Sprint(slices.Sorted(slices.Values(callers))) {
		t.Fatalf("batch span parent and links %v; want the callers' spans %v", joined, callers)
	}
}

// waitQueued waits until n calls wait in b's queue.
func waitQueued[Req, Res any](t *testing.T, b *Batcher[Req, Res], n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		q := len(b.queue)
		b.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued after 5s; want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSubmitAnswersWithoutWaiting: Submit returns before its batch is sent, requests
// submitted while a batch is in flight go out together in the next, each callback gets its
// own answer (the batch's error for a failed batch, ctx's for a request whose ctx ended
// before its batch), and no goroutine but the batcher's waits meanwhile.
func TestSubmitAnswersWithoutWaiting(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), entered: make(chan struct{}, 10)}
	b := New(r.call, Options{})
	defer b.wg.Wait()

	answers := make(chan string, 12)
	submit := func(ctx context.Context, n int) {
		b.Submit(ctx, n, func(res Result[int]) {
			answers <- fmt.Sprintf("%d:%d:%v", n, res.Value, res.Err)
		})
	}
	submit(context.Background(), 100)
	<-r.entered // the first batch is in flight; Submit did not wait for it
	before := runtime.NumGoroutine()
	for n := 1; n <= 10; n++ {
		submit(context.Background(), n)
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	submit(ended, 12)
	if after := runtime.NumGoroutine(); after != before {
		t.Errorf("goroutines %d after 11 Submits, %d before: Submit must not hold one per request", after, before)
	}
	waitQueued(t, b, 11)
	close(r.hold)
	got := map[string]bool{}
	for range 12 {
		got[<-answers] = true
	}
	want := []string{"100:200:<nil>", "12:0:context canceled"}
	for n := 1; n <= 10; n++ {
		if n%2 != 0 {
			want = append(want, fmt.Sprintf("%d:0:odd %d", n, n))
		} else {
			want = append(want, fmt.Sprintf("%d:%d:<nil>", n, 2*n))
		}
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no answer %q among %v", w, got)
		}
	}
	if sizes := r.sizes(); len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 10 {
		t.Fatalf("batch sizes %v; want [1 10] (the ended request left out)", sizes)
	}
}
