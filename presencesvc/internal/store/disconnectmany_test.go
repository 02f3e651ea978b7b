package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/charla/charla/presencesvc/internal/presence"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// Times of the DisconnectMany tests: connections are recorded at connectedAt and removed
// at disconnectedAt, so that a LastSeen set by the removal is told from one never set.
const (
	connectedAt    = int64(1_000_000)
	disconnectedAt = int64(1_005_000)
)

// disconnectManyCase is a batch covering every outcome of Disconnect, built on its own
// edge and users (base) so that the same batch can run twice in one database. Connection
// ids ending in "-boom" cannot be removed (failOnDelete).
func disconnectManyCase(base int64, edge string) []presence.Connection {
	id := func(n int64) int64 { return base + n }
	c := func(name string) string { return edge + "-" + name }
	return []presence.Connection{
		{EdgeID: edge, UserID: id(1), ConnectionID: c("c1")},     // the only connection: offline
		{EdgeID: edge, UserID: id(2), ConnectionID: c("c2a")},    // the same user twice:
		{EdgeID: edge, UserID: id(2), ConnectionID: c("c2b")},    // only the last goes offline
		{EdgeID: edge, UserID: id(3), ConnectionID: c("c3a")},    // c3b stays: still online
		{EdgeID: edge, UserID: id(1), ConnectionID: c("c1")},     // a repeat: idempotent
		{EdgeID: edge, UserID: id(4), ConnectionID: c("c4")},     // never recorded: idempotent
		{EdgeID: edge, UserID: id(5), ConnectionID: c("c3b")},    // another user's id: nothing
		{EdgeID: "other", UserID: id(3), ConnectionID: c("c3b")}, // another edge: nothing
		{EdgeID: edge, UserID: id(6), ConnectionID: c("c6")},     // boom stays: still online
		{EdgeID: edge, UserID: id(6), ConnectionID: c("boom")},   // fails: no trace
	}
}

// prepareDisconnectManyCase starts edge's lease and records the connections that
// disconnectManyCase removes (and some it leaves).
func prepareDisconnectManyCase(t *testing.T, s *Store, base int64, edge string) {
	t.Helper()
	ctx := context.Background()
	if err := s.StartLease(ctx, edge, connectedAt+60_000); err != nil {
		t.Fatalf("StartLease: %v", err)
	}
	for _, c := range []struct {
		user int64
		name string
	}{{1, "c1"}, {2, "c2a"}, {2, "c2b"}, {3, "c3a"}, {3, "c3b"}, {6, "c6"}, {6, "boom"}} {
		if _, err := s.Connect(ctx, edge, base+c.user, edge+"-"+c.name, connectedAt); err != nil {
			t.Fatalf("Connect(%d, %s): %v", base+c.user, c.name, err)
		}
	}
}

// failOnDelete makes the database refuse to remove a connection whose id ends in "-boom",
// as a failing statement would: the one way a Disconnect fails on its own.
func failOnDelete(t *testing.T, s *Store, url string) {
	t.Helper()
	trigger := `CREATE TRIGGER FailOnDelete BEFORE DELETE ON PresenceConnection
		FOR EACH ROW WHEN OLD.ConnectionId LIKE '%-boom' BEGIN SELECT RAISE(ABORT, 'boom'); END`
	if !strings.HasPrefix(url, "sqlite") {
		trigger = `CREATE TRIGGER FailOnDelete BEFORE DELETE ON PresenceConnection FOR EACH ROW
			BEGIN IF OLD.ConnectionId LIKE '%-boom' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom'; END IF; END`
	}
	if _, err := s.db.ExecContext(context.Background(), trigger); err != nil {
		t.Fatalf("create trigger: %v", err)
	}
}

// TestDisconnectManyAsDisconnects: DisconnectMany answers every connection exactly as
// Disconnects one after the other would have (same transitions, same failures), a failed
// one leaves no trace and does not stop the others, and on SQLite the whole batch is one
// transaction of the writer.
func TestDisconnectManyAsDisconnects(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		ctx := context.Background()
		failOnDelete(t, s, url)

		// The reference: the same batch, on other users and another edge, as Disconnects.
		prepareDisconnectManyCase(t, s, 100, "ref")
		var want []presence.ConnectionResult
		for _, c := range disconnectManyCase(100, "ref") {
			tr, err := s.Disconnect(ctx, c.EdgeID, c.UserID, c.ConnectionID, disconnectedAt)
			if err == nil {
				tr.UserID -= 100
			}
			want = append(want, presence.ConnectionResult{Transition: tr, Err: err})
		}

		prepareDisconnectManyCase(t, s, 0, "e1")
		txs := s.writerTxs.Load()
		got := s.DisconnectMany(ctx, disconnectManyCase(0, "e1"), disconnectedAt)
		if strings.HasPrefix(url, "sqlite") {
			if n := s.writerTxs.Load() - txs; n != 1 {
				t.Errorf("DisconnectMany took %d writer transactions, want 1", n)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("DisconnectMany: %d results, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i].Transition != want[i].Transition || (got[i].Err == nil) != (want[i].Err == nil) {
				t.Errorf("connection %d: got %+v, want %+v (as Disconnect)", i, got[i], want[i])
			}
		}
		// Spelled out, so that the reference cannot be wrong in the same way.
		wantOffline := []bool{true, false, true, false, false, false, false, false, false, false}
		for i, r := range got {
			if r.Transition.BecameOffline() != wantOffline[i] || (r.Err != nil) != (i == 9) {
				t.Errorf("connection %d: got %+v, want became offline %v, failed %v", i, r, wantOffline[i], i == 9)
			}
			if r.Err == nil && r.Transition.UserID != disconnectManyCase(0, "e1")[i].UserID {
				t.Errorf("connection %d: transition of user %d, want %d", i, r.Transition.UserID, disconnectManyCase(0, "e1")[i].UserID)
			}
		}
		if r := got[9]; r.Transition != (presence.Transition{}) {
			t.Errorf("failed connection: transition %+v, want none", r.Transition)
		}
		checkDisconnectManyState(t, s)

		if got := s.DisconnectMany(ctx, nil, disconnectedAt); len(got) != 0 {
			t.Errorf("DisconnectMany(nil) = %v, want no results", got)
		}
	})
}

// checkDisconnectManyState checks what disconnectManyCase(0, "e1") left in the store:
// users 1 and 2 offline since the batch, 3 online with the connection the batch did not
// remove, 6 with the one whose removal failed, 4 and 5 never online.
func checkDisconnectManyState(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	users := []int64{1, 2, 3, 4, 5, 6}
	ps, err := s.Presences(ctx, users)
	if err != nil {
		t.Fatalf("Presences: %v", err)
	}
	routes, err := s.Routes(ctx, users)
	if err != nil {
		t.Fatalf("Routes: %v", err)
	}
	wantLastSeen := map[int64]int64{1: disconnectedAt, 2: disconnectedAt}
	wantConns := map[int64][]string{3: {"e1-c3b"}, 6: {"e1-boom"}}
	for _, u := range users {
		online := len(wantConns[u]) > 0
		if ps[u].IsOnline != online || ps[u].LastSeen != wantLastSeen[u] || (len(routes[u]) > 0) != online {
			t.Errorf("user %d: presence %+v, routes %v; want online %v, last seen %d", u, ps[u], routes[u], online, wantLastSeen[u])
		}
		conns, err := s.ExcessConnections(ctx, u, 0)
		if err != nil {
			t.Fatalf("ExcessConnections: %v", err)
		}
		var ids []string
		for _, c := range conns {
			ids = append(ids, c.ConnectionID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, wantConns[u]) {
			t.Errorf("user %d holds %v, want %v", u, ids, wantConns[u])
		}
	}
}

// TestDisconnectManyAmongOthers runs batches and single Disconnects at once: on SQLite
// they share the writer's groups (a batch is never split), and every outcome must still
// be its own.
func TestDisconnectManyAmongOthers(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		ctx := context.Background()
		if err := s.StartLease(ctx, "e1", connectedAt+60_000); err != nil {
			t.Fatalf("StartLease: %v", err)
		}
		// Worker w's user u holds two connections; batches remove both (the second makes
		// the user offline), singles remove one (the user stays online).
		const workers, per = 16, 4
		user := func(w, i int) int64 { return int64(w*per + i + 1) }
		conn := func(w, i, k int) string { return fmt.Sprintf("w%d-%d-%d", w, i, k) }
		for w := range workers {
			for i := range per {
				for k := range 2 {
					if _, err := s.Connect(ctx, "e1", user(w, i), conn(w, i, k), connectedAt); err != nil {
						t.Fatalf("Connect: %v", err)
					}
				}
			}
		}
		batches := make([][]presence.ConnectionResult, workers)
		singles := make([][]presence.Transition, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				if w%2 == 1 {
					for i := range per {
						tr, err := s.Disconnect(ctx, "e1", user(w, i), conn(w, i, 0), disconnectedAt)
						if err != nil {
							t.Errorf("Disconnect of worker %d: %v", w, err)
						}
						singles[w] = append(singles[w], tr)
					}
					return
				}
				var conns []presence.Connection
				for i := range per {
					for k := range 2 {
						conns = append(conns, presence.Connection{EdgeID: "e1", UserID: user(w, i), ConnectionID: conn(w, i, k)})
					}
				}
				batches[w] = s.DisconnectMany(ctx, conns, disconnectedAt)
			})
		}
		wg.Wait()
		for w := range workers {
			for i, tr := range singles[w] {
				if tr.Changed || !tr.IsOnline {
					t.Errorf("worker %d Disconnect %d: got %+v, want still online", w, i, tr)
				}
			}
			for j, r := range batches[w] {
				if r.Err != nil || r.Transition.BecameOffline() != (j%2 == 1) || r.Transition.UserID != user(w, j/2) {
					t.Errorf("batch %d connection %d: got %+v, want user %d offline %v", w, j, r, user(w, j/2), j%2 == 1)
				}
			}
		}
	})
}
