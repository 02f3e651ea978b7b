package presence

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/waittest"
)

// holdFirstDisconnectMany holds the first DisconnectMany until released (gate).
type holdFirstDisconnectMany struct {
	*fakeClient
	*gate
}

func (h *holdFirstDisconnectMany) DisconnectMany(ctx context.Context, r *connect.Request[presencev1.DisconnectManyRequest]) (*connect.Response[presencev1.DisconnectManyResponse], error) {
	h.pass()
	return h.fakeClient.DisconnectMany(ctx, r)
}

// connectAll records the connections ids (user i+1 each) and fails the test unless each
// was recorded.
func connectAll(t *testing.T, r *Reporter, ids []string) {
	t.Helper()
	for i, id := range ids {
		r.Connected(context.Background(), Conn{UserID: int64(i + 1), ConnID: id}, false)
		if !isRecorded(r, id) {
			t.Fatalf("connection %s not recorded", id)
		}
	}
}

// isRecorded reports whether presence has the reporter's connection id.
func isRecorded(r *Reporter, id string) bool {
	r.mu.Lock()
	c := r.conns[id]
	r.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recorded
}

// drain waits (bounded) until every Disconnect the reporter owes has been answered.
func drain(t *testing.T, r *Reporter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waittest.Bound)
	defer cancel()
	if err := r.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
}

// TestDisconnectsShareBatches: the connections that close while a DisconnectMany is in
// flight go out together in the next one, and wait for it without a goroutine each.
// Not parallel: it counts goroutines.
func TestDisconnectsShareBatches(t *testing.T) {
	f := newFake()
	h := &holdFirstDisconnectMany{fakeClient: f, gate: newGate()}
	r := New(h, Options{EdgeID: "e1", after: newBeatClock().after})
	run(t, r)
	const n = 50
	ids := []string{"first"}
	for i := range n {
		ids = append(ids, fmt.Sprintf("c%d", i))
	}
	connectAll(t, r, ids)

	r.Disconnected(Conn{UserID: 1, ConnID: "first"})
	<-h.entered // the first batch is in flight, held
	before := runtime.NumGoroutine()
	for i, id := range ids[1:] {
		r.Disconnected(Conn{UserID: int64(i + 2), ConnID: id})
	}
	waittest.Until(t, "the Disconnects to queue", func() bool { return r.disconnects.Queued() == n })
	// Each Disconnected's short-lived goroutine has ended once its Disconnect is queued.
	waittest.Until(t, "the goroutines that queued them to end", func() bool { return runtime.NumGoroutine() <= before+2 })
	close(h.release)
	drain(t, r)

	f.mu.Lock()
	batches, left := slices.Clone(f.disconnectBatches), len(f.conns)
	f.mu.Unlock()
	if want := []int{1, n}; !slices.Equal(batches, want) {
		t.Errorf("DisconnectMany sizes %v, want %v", batches, want)
	}
	if left != 0 {
		t.Errorf("presence still holds %d connections", left)
	}
	r.mu.Lock()
	kept := len(r.conns)
	r.mu.Unlock()
	if kept != 0 {
		t.Errorf("the reporter still keeps %d connections after presence had their Disconnects", kept)
	}
}

// TestDisconnectManyItemErrorIsOwed: a connection whose item of a DisconnectMany failed
// stays owed, the others of the batch are forgotten, and the resync after the next beat
// sends it again.
func TestDisconnectManyItemErrorIsOwed(t *testing.T) {
	f := newFake()
	f.rejectDisconnect = map[string]connect.Code{"bad": connect.CodeUnavailable}
	clock := newBeatClock()
	r := New(f, Options{EdgeID: "e1", after: clock.after})
	run(t, r)
	connectAll(t, r, []string{"ok1", "bad", "ok2"})
	for i, id := range []string{"ok1", "bad", "ok2"} {
		r.Disconnected(Conn{UserID: int64(i + 1), ConnID: id})
	}
	drain(t, r)
	r.mu.Lock()
	c, kept := r.conns["bad"]
	owed, failed, n := r.owed, kept && c.releaseFailed, len(r.conns)
	r.mu.Unlock()
	if !kept || !failed || !owed || n != 1 {
		t.Fatalf("after the batch: bad kept %v, its release failed %v, owed %v, %d connections kept; want true, true, true, 1", kept, failed, owed, n)
	}

	f.set(func(f *fakeClient) { f.rejectDisconnect = nil })
	if err := clock.beat(t, f); err != nil { // a beat that lands makes the owed calls again
		t.Fatalf("beat: %v", err)
	}
	waittest.Until(t, "the owed Disconnect", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.conns) == 0
	})
	f.mu.Lock()
	held := f.conns["bad"]
	f.mu.Unlock()
	if held {
		t.Error("presence still holds the connection whose Disconnect was made again")
	}
}

// TestDisconnectManyUnimplementedFallsBack: against a presence service without
// DisconnectMany every connection gets a Disconnect of its own, and the reporter keeps to
// that for a while instead of asking for DisconnectMany each time.
func TestDisconnectManyUnimplementedFallsBack(t *testing.T) {
	f := newFake()
	f.noDisconnectMany = true
	r := New(f, Options{EdgeID: "e1", after: newBeatClock().after})
	run(t, r)
	ids := []string{"c1", "c2", "c3"}
	connectAll(t, r, ids)
	for i, id := range ids {
		r.Disconnected(Conn{UserID: int64(i + 1), ConnID: id})
	}
	drain(t, r)
	f.mu.Lock()
	left, batches := len(f.conns), len(f.disconnectBatches)
	var removed []string
	for _, l := range f.log {
		if l[0] == '-' {
			removed = append(removed, l[1:])
		}
	}
	f.mu.Unlock()
	slices.Sort(removed)
	if left != 0 || batches != 0 || !slices.Equal(removed, ids) {
		t.Errorf("presence holds %d connections, %d DisconnectMany landed, Disconnects %v; want 0, 0, %v", left, batches, removed, ids)
	}
	if r.singleDisconnectUntil.Load() == 0 {
		t.Error("the reporter did not remember that presence lacks DisconnectMany")
	}
}
