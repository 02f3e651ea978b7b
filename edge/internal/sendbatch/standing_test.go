package sendbatch

import (
	"testing"
	"time"
)

// TestStandingQueueDetector: waits at or above the target make the queue standing only
// once they have lasted the interval; the first wait below the target ends it at once;
// a standing queue refuses from a call's worth of waiting sends, a draining one only
// from MaxWaiting.
func TestStandingQueueDetector(t *testing.T) {
	b := New(nil, Options{MaxBatch: 4, MaxWaiting: 100, QueueTarget: 10 * time.Millisecond, QueueInterval: 100 * time.Millisecond})
	t0 := time.Unix(1_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	wantStanding := func(step string, want bool) {
		t.Helper()
		if b.standing != want {
			t.Fatalf("%s: standing %v, want %v", step, b.standing, want)
		}
	}
	fill := func(n int) { b.waiting = make([]*send, n) }

	b.observe(at(0), 15*time.Millisecond)
	wantStanding("first wait above the target", false)
	b.observe(at(50), 30*time.Millisecond)
	wantStanding("above for half the interval", false)
	fill(4)
	if b.full() {
		t.Fatal("a call's worth waiting refused before the queue is standing")
	}
	b.observe(at(100), 10*time.Millisecond)
	wantStanding("above (at the target) for the whole interval", true)
	if !b.full() {
		t.Fatal("standing queue with a call's worth waiting: a new send is accepted, want refused")
	}
	fill(3)
	if b.full() {
		t.Fatal("standing queue with less than a call's worth waiting: a new send is refused, want accepted")
	}
	b.observe(at(110), 9*time.Millisecond)
	wantStanding("one wait below the target", false)
	fill(99)
	if b.full() {
		t.Fatal("draining queue below MaxWaiting refused a send")
	}
	fill(100)
	if !b.full() {
		t.Fatal("queue at MaxWaiting accepted a send")
	}
	// Above again: the interval counts anew from this wait, not from the first one.
	b.observe(at(200), 20*time.Millisecond)
	b.observe(at(250), 20*time.Millisecond)
	wantStanding("above again for half an interval", false)
	b.observe(at(300), 20*time.Millisecond)
	wantStanding("above again for an interval", true)

	off := New(nil, Options{QueueTarget: -1})
	off.observe(at(0), time.Hour)
	off.observe(at(1000), time.Hour)
	if off.standing {
		t.Fatal("QueueTarget < 0: the detector still ran")
	}
}
