package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/charla/charla/presencesvc/internal/presence"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// connectManyCase is a batch covering every outcome of Connect, built on its own edge and
// users (base) so that the same batch can run twice in one database.
func connectManyCase(base int64, edge string) []presence.Connection {
	id := func(n int64) int64 { return base + n }
	return []presence.Connection{
		{EdgeID: edge, UserID: id(1), ConnectionID: fmt.Sprintf("%s-c1", edge)},    // new user: online
		{EdgeID: edge, UserID: id(2), ConnectionID: fmt.Sprintf("%s-c2b", edge)},   // a second connection
		{EdgeID: edge, UserID: id(3), ConnectionID: fmt.Sprintf("%s-c3a", edge)},   // the same user twice:
		{EdgeID: edge, UserID: id(3), ConnectionID: fmt.Sprintf("%s-c3b", edge)},   // only the first goes online
		{EdgeID: "gone", UserID: id(4), ConnectionID: fmt.Sprintf("%s-c4", edge)},  // no lease
		{EdgeID: edge, UserID: id(5), ConnectionID: fmt.Sprintf("%s-taken", edge)}, // another user's id
		{EdgeID: edge, UserID: id(1), ConnectionID: fmt.Sprintf("%s-c1", edge)},    // a repeat: idempotent
	}
}

// prepareConnectManyCase starts edge's lease and records what connectManyCase builds on.
func prepareConnectManyCase(t *testing.T, s *Store, base int64, edge string, now int64) {
	t.Helper()
	ctx := context.Background()
	if err := s.StartLease(ctx, edge, now+60_000); err != nil {
		t.Fatalf("StartLease: %v", err)
	}
	for _, c := range []presence.Connection{
		{EdgeID: edge, UserID: base + 2, ConnectionID: edge + "-c2a"},
		{EdgeID: edge, UserID: base + 9, ConnectionID: edge + "-taken"},
	} {
		if _, err := s.Connect(ctx, c.EdgeID, c.UserID, c.ConnectionID, now); err != nil {
			t.Fatalf("Connect(%+v): %v", c, err)
		}
	}
}

// TestConnectManyAsConnects: ConnectMany answers every connection exactly as Connects
// one after the other would have (same transitions, same errors), a failed one leaves no
// trace, and on SQLite the whole batch is one transaction of the writer.
func TestConnectManyAsConnects(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		ctx := context.Background()
		const now = int64(1_000_000)

		// The reference: the same batch, on other users and another edge, as Connects.
		prepareConnectManyCase(t, s, 100, "ref", now)
		var want []presence.ConnectionResult
		for _, c := range connectManyCase(100, "ref") {
			tr, err := s.Connect(ctx, c.EdgeID, c.UserID, c.ConnectionID, now)
			if err == nil {
				tr.UserID -= 100
			}
			want = append(want, presence.ConnectionResult{Transition: tr, Err: err})
		}

		// The batch in one transaction, then again (other users, another edge) with a race
		// that makes the one transaction fail: recorded one by one instead.
		for _, raced := range []bool{false, true} {
			base, edge, wantTxs := int64(0), "e1", int64(1)
			if raced {
				base, edge, wantTxs = 200, "e2", 2
				var once sync.Once
				s.afterSetReads = func(tx *tx) {
					once.Do(func() {
						// The lease ends between the batch's reads and its writes.
						if _, err := tx.exec(`UPDATE Edge SET LeaseExpiresAt = 0 WHERE EdgeId = ?`, edge); err != nil {
							t.Errorf("end lease: %v", err)
						}
					})
				}
			}
			checkConnectMany(t, s, url, base, edge, wantTxs, want)
			s.afterSetReads = nil
		}

		if got := s.ConnectMany(ctx, nil, now); len(got) != 0 {
			t.Errorf("ConnectMany(nil) = %v, want no results", got)
		}
	})
}

// checkConnectMany runs connectManyCase(base, edge) through ConnectMany and compares its
// results with want, Connect's, and what it left in the store.
func checkConnectMany(t *testing.T, s *Store, url string, base int64, edge string, wantTxs int64, want []presence.ConnectionResult) {
	t.Helper()
	ctx := context.Background()
	const now = int64(1_000_000)
	prepareConnectManyCase(t, s, base, edge, now)
	txs := s.writerTxs.Load()
	got := s.ConnectMany(ctx, connectManyCase(base, edge), now)
	for i := range got {
		if got[i].Err == nil {
			got[i].Transition.UserID -= base
		}
	}
	if strings.HasPrefix(url, "sqlite") {
		if n := s.writerTxs.Load() - txs; n != wantTxs {
			t.Errorf("ConnectMany took %d writer transactions, want %d", n, wantTxs)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("ConnectMany: %d results, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Transition != want[i].Transition || !errors.Is(got[i].Err, want[i].Err) || (got[i].Err == nil) != (want[i].Err == nil) {
			t.Errorf("connection %d: got %+v, want %+v (as Connect)", i, got[i], want[i])
		}
	}
	// Spelled out, so that the reference cannot be wrong in the same way.
	wantOnline := []bool{true, false, true, false, false, false, false}
	wantErr := []error{nil, nil, nil, nil, presence.ErrEdgeNotFound, presence.ErrConnectionConflict, nil}
	for i, r := range got {
		if r.Transition.BecameOnline() != wantOnline[i] || !errors.Is(r.Err, wantErr[i]) {
			t.Errorf("connection %d: got %+v, want became online %v, error %v", i, r, wantOnline[i], wantErr[i])
		}
	}

	// The failed ones left nothing: no status row, no route.
	users := []int64{base + 1, base + 2, base + 3, base + 4, base + 5}
	ps, err := s.Presences(ctx, users)
	if err != nil {
		t.Fatalf("Presences: %v", err)
	}
	routes, err := s.Routes(ctx, users)
	if err != nil {
		t.Fatalf("Routes: %v", err)
	}
	for _, u := range users {
		online := u <= base+3
		if ps[u].IsOnline != online || (len(routes[u]) > 0) != online {
			t.Errorf("user %d: presence %+v, routes %v; want online %v", u, ps[u], routes[u], online)
		}
		if _, ok := ps[u]; !online && ok {
			t.Errorf("user %d: a status row is left by a failed connection", u)
		}
	}
	conns, err := s.ExcessConnections(ctx, base+3, 0)
	if err != nil {
		t.Fatalf("ExcessConnections: %v", err)
	}
	if len(conns) != 2 {
		t.Errorf("user 3 holds %v, want both connections", conns)
	}
}

// TestConnectManyAmongOthers runs batches and single Connects at once: on SQLite they
// share the writer's groups (a batch is never split), and every outcome must still be
// its own.
func TestConnectManyAmongOthers(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		ctx := context.Background()
		const now = int64(1_000_000)
		if err := s.StartLease(ctx, "e1", now+60_000); err != nil {
			t.Fatalf("StartLease: %v", err)
		}
		const workers, per = 16, 5
		batches := make([][]presence.ConnectionResult, workers)
		singles := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				if w%2 == 1 {
					_, singles[w] = s.Connect(ctx, "e1", int64(1000+w), fmt.Sprintf("s%d", w), now)
					return
				}
				var conns []presence.Connection
				for i := range per {
					edge := "e1"
					if i == 2 {
						edge = "gone"
					}
					conns = append(conns, presence.Connection{EdgeID: edge, UserID: int64(w*per + i + 1), ConnectionID: fmt.Sprintf("b%d-%d", w, i)})
				}
				batches[w] = s.ConnectMany(ctx, conns, now)
			})
		}
		wg.Wait()
		for w := range workers {
			if w%2 == 1 {
				if singles[w] != nil {
					t.Errorf("Connect of worker %d: %v", w, singles[w])
				}
				continue
			}
			for i, r := range batches[w] {
				if i == 2 {
					if !errors.Is(r.Err, presence.ErrEdgeNotFound) {
						t.Errorf("batch %d connection %d: got %+v, want %v", w, i, r, presence.ErrEdgeNotFound)
					}
					continue
				}
				if r.Err != nil || !r.Transition.BecameOnline() {
					t.Errorf("batch %d connection %d: got %+v, want online", w, i, r)
				}
			}
		}
	})
}

// TestConnectChains: connections of one user or with one connection id share a chain, in
// their order, directly or through others; the rest are apart.
func TestConnectChains(t *testing.T) {
	t.Parallel()
	conns := []presence.Connection{
		{UserID: 1, ConnectionID: "a"}, // 0
		{UserID: 2, ConnectionID: "b"}, // 1
		{UserID: 1, ConnectionID: "c"}, // 2: user 1 again
		{UserID: 3, ConnectionID: "b"}, // 3: connection b again
		{UserID: 4, ConnectionID: "d"}, // 4: alone
		{UserID: 5, ConnectionID: "e"}, // 5
		{UserID: 6, ConnectionID: "f"}, // 6
		{UserID: 6, ConnectionID: "e"}, // 7: joins 5 and 6
	}
	got := connectChains(conns)
	want := [][]int{{0, 2}, {1, 3}, {4}, {5, 6, 7}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("connectChains = %v, want %v", got, want)
	}
}
