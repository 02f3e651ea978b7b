package hist

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	t.Parallel()
	prev := -1
	for _, us := range []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 1<<40 + 12345} {
		i := index(us)
		if i < prev {
			t.Errorf("index(%d) = %d, want >= %d (monotonic)", us, i, prev)
		}
		prev = i
		if got := upper(i); got < us {
			t.Errorf("upper(index(%d)) = %d, want >= %d", us, got, us)
		}
		if i > 0 {
			if low := upper(i-1) + 1; low > us {
				t.Errorf("value %d below its bucket's lower bound %d", us, low)
			}
		}
	}
}

func TestPercentilesWithinPrecision(t *testing.T) {
	t.Parallel()
	var h Histogram
	r := rand.New(rand.NewPCG(1, 2))
	var vals []time.Duration
	for range 100000 {
		d := time.Duration(r.ExpFloat64()*2000) * time.Microsecond
		vals = append(vals, d)
		h.Record(d)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := vals[int(q*float64(len(vals)))-1]
		got := h.Percentile(q)
		if diff := float64(got-want) / float64(want); diff < -0.001 || diff > 0.02 {
			t.Errorf("p%v = %v, want %v within +2%%", q*100, got, want)
		}
	}
	if got, want := h.Max(), vals[len(vals)-1].Truncate(time.Microsecond); got != want {
		t.Errorf("Max = %v, want %v", got, want)
	}
	if got := h.Count(); got != 100000 {
		t.Errorf("Count = %d, want 100000", got)
	}
}

func TestSmallCounts(t *testing.T) {
	t.Parallel()
	var h Histogram
	if got := h.Percentile(0.99); got != 0 {
		t.Errorf("empty p99 = %v, want 0", got)
	}
	for _, ms := range []int{1, 2, 3, 4, 100} {
		h.Record(time.Duration(ms) * time.Millisecond)
	}
	if got := h.Percentile(0.5); got < 3*time.Millisecond || got > 3060*time.Microsecond {
		t.Errorf("p50 of 1,2,3,4,100 ms = %v, want about 3ms", got)
	}
	if got, want := h.Percentile(0.99), 100*time.Millisecond; got != want {
		t.Errorf("p99 = %v, want %v (capped at max)", got, want)
	}
	h.Record(-time.Second)
	if got := h.Percentile(0.01); got != 0 {
		t.Errorf("p1 after a negative duration = %v, want 0", got)
	}
}

func TestConcurrentRecord(t *testing.T) {
	t.Parallel()
	var h Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if got := h.Count(); got != 8000 {
		t.Errorf("Count = %d, want 8000", got)
	}
	if got, want := h.Max(), 7999*time.Microsecond; got != want {
		t.Errorf("Max = %v, want %v", got, want)
	}
}

// TestAddMergesAsOneRecording: two histograms added into a third give the percentiles,
// count and max of one histogram that recorded everything.
func TestAddMergesAsOneRecording(t *testing.T) {
	t.Parallel()
	var a, b, all, sum Histogram
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 5000 {
		d := time.Duration(r.IntN(50_000)) * time.Microsecond
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		all.Record(d)
	}
	b.Record(2 * time.Second) // b holds the max
	all.Record(2 * time.Second)
	sum.Add(&a)
	sum.Add(&b)
	if sum.Count() != all.Count() || sum.Max() != all.Max() {
		t.Fatalf("count %d max %v, want %d %v", sum.Count(), sum.Max(), all.Count(), all.Max())
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		if got, want := sum.Percentile(q), all.Percentile(q); got != want {
			t.Errorf("p%g = %v, want %v", q*100, got, want)
		}
	}
}
