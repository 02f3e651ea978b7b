package sched

import (
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rate    float64
		elapsed time.Duration
		want    int64
	}{
		{1000, time.Second, 1000},
		{1000, 999 * time.Microsecond, 0},
		{1000, time.Millisecond, 1},
		{10000, 250 * time.Millisecond, 2500},
		{3, 10 * time.Second, 30},
		{500, -time.Second, 0},
	} {
		if got := Due(tc.rate, tc.elapsed); got != tc.want {
			t.Errorf("Due(%v, %v) = %d, want %d", tc.rate, tc.elapsed, got, tc.want)
		}
	}
}

func TestPacerHandsOutExactlyTotal(t *testing.T) {
	t.Parallel()
	p, err := NewPacer(2000, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	// Irregular ticks, one very late: the late one catches up, none is lost or doubled.
	for _, ms := range []int{1, 2, 2, 7, 500, 501, 3000, 9999, 10000, 12000} {
		n := p.Step(time.Duration(ms) * time.Millisecond)
		if n < 0 {
			t.Fatalf("Step(%dms) = %d, want >= 0", ms, n)
		}
		sum += n
		if want := Due(2000, min(time.Duration(ms)*time.Millisecond, 10*time.Second)); sum != want {
			t.Errorf("after %dms: %d sent, want %d", ms, sum, want)
		}
	}
	if sum != p.Total() || sum != 20000 {
		t.Errorf("sent %d, want Total %d = 20000", sum, p.Total())
	}
	if !p.Done() {
		t.Error("Done = false after the whole phase")
	}
	if n := p.Step(time.Hour); n != 0 {
		t.Errorf("Step after the end = %d, want 0", n)
	}
}

func TestNewPacerRejectsBadInput(t *testing.T) {
	t.Parallel()
	if _, err := NewPacer(0, time.Second); err == nil {
		t.Error("rate 0: no error")
	}
	if _, err := NewPacer(10, 0); err == nil {
		t.Error("duration 0: no error")
	}
}
