package cursor

import (
	"testing"

	"github.com/charla/charla/shared/eventlog"
)

type sink struct{ seqs []uint64 }

func (s *sink) deliver(r eventlog.Record) { s.seqs = append(s.seqs, r.Seq) }

func rec(seq uint64) eventlog.Record { return eventlog.Record{Seq: seq, UserID: 1} }

func recs(seqs ...uint64) []eventlog.Record {
	out := make([]eventlog.Record, len(seqs))
	for i, s := range seqs {
		out[i] = rec(s)
	}
	return out
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStartHoldsLiveRecordsAndDropsThoseCoveredByLastSeq(t *testing.T) {
	var s sink
	c := New(func(r eventlog.Record) uint64 { return r.Seq }, s.deliver)
	for _, r := range recs(4, 5, 6) {
		if c.Offer(r) {
			t.Fatal("a starting cursor asked for a catch-up")
		}
	}
	if len(s.seqs) != 0 {
		t.Fatalf("passed on %v before Start", s.seqs)
	}
	// CONNECTED said lastSeq 4; the resume replays 3 and 4.
	if c.Start(4, recs(3, 4)) {
		t.Fatal("Start found a gap")
	}
	if want := []uint64{3, 4, 5, 6}; !equal(s.seqs, want) {
		t.Fatalf("passed on %v, want %v", s.seqs, want)
	}
	c.Offer(rec(6))
	c.Offer(rec(7))
	if want := []uint64{3, 4, 5, 6, 7}; !equal(s.seqs, want) {
		t.Fatalf("after a duplicate: %v, want %v", s.seqs, want)
	}
}

func TestGapIsFilledFromHistoryInOrder(t *testing.T) {
	var s sink
	c := New(func(r eventlog.Record) uint64 { return r.Seq }, s.deliver)
	c.Start(0, nil)
	c.Offer(rec(1))
	if !c.Offer(rec(4)) {
		t.Fatal("seq 4 after 1 is a gap")
	}
	if c.State() != CatchingUp || c.Next() != 2 {
		t.Fatalf("state %v next %d, want CatchingUp, 2", c.State(), c.Next())
	}
	c.Offer(rec(5)) // held behind the gap
	if c.CaughtUp(recs(2, 3, 4), true) {
		t.Fatal("no gap remains")
	}
	if want := []uint64{1, 2, 3, 4, 5}; !equal(s.seqs, want) {
		t.Fatalf("passed on %v, want %v", s.seqs, want)
	}
	if c.State() != Live || c.Next() != 6 {
		t.Fatalf("state %v next %d, want Live, 6", c.State(), c.Next())
	}
}

func TestCatchUpThatStillLeavesAGapAsksAgain(t *testing.T) {
	var s sink
	c := New(func(r eventlog.Record) uint64 { return r.Seq }, s.deliver)
	c.Start(0, nil)
	c.Offer(rec(3))
	c.Offer(rec(6))
	if !c.CaughtUp(recs(1, 2, 3), true) {
		t.Fatal("seq 6 after 3 still is a gap")
	}
	if c.CaughtUp(recs(4, 5, 6), true) {
		t.Fatal("nothing missing now")
	}
	if want := []uint64{1, 2, 3, 4, 5, 6}; !equal(s.seqs, want) {
		t.Fatalf("passed on %v, want %v", s.seqs, want)
	}
}

func TestHistoryThatNoLongerHoldsTheGapFails(t *testing.T) {
	var s sink
	c := New(func(r eventlog.Record) uint64 { return r.Seq }, s.deliver)
	c.Start(10, nil)
	c.Offer(rec(13))
	c.CaughtUp(nil, false)
	if c.State() != Failed {
		t.Fatalf("state %v, want Failed", c.State())
	}
	c.Offer(rec(14))
	if len(s.seqs) != 0 {
		t.Fatalf("a failed cursor passed on %v", s.seqs)
	}
}

func TestTooManyHeldFails(t *testing.T) {
	var s sink
	c := New(func(r eventlog.Record) uint64 { return r.Seq }, s.deliver)
	for i := range MaxHeld + 1 {
		c.Offer(rec(uint64(i + 1)))
	}
	if c.State() != Failed {
		t.Fatalf("state %v after %d held records, want Failed", c.State(), MaxHeld+1)
	}
}

func TestResyncReadsWhatTheStreamMayHaveSkipped(t *testing.T) {
	var s sink
	c := New(func(r eventlog.Record) uint64 { return r.Seq }, s.deliver)
	c.Start(2, nil)
	c.Offer(rec(3))
	if !c.Resync() {
		t.Fatal("a live cursor must catch up on resync")
	}
	c.Offer(rec(6))
	c.CaughtUp(recs(3, 4, 5), true)
	if want := []uint64{3, 4, 5, 6}; !equal(s.seqs, want) {
		t.Fatalf("passed on %v, want %v", s.seqs, want)
	}
}
