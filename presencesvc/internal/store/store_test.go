package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/charla/charla/presencesvc/internal/presence"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

func newStore(t *testing.T, url string) *Store {
	t.Helper()
	ctx := context.Background()
	db := dbtest.OpenURL(t, url)
	if err := Migrate(ctx, db); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	s, err := New(ctx, db)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestFailuresDoNotSpoilOthers runs many writes at once, half of which fail (unknown edge,
// conflicting connection id): on SQLite they share group commits, and every success must
// be stored and every failure leave nothing behind.
func TestFailuresDoNotSpoilOthers(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		ctx := context.Background()
		const now = int64(1_000_000)
		if err := s.StartLease(ctx, "e1", now+60_000); err != nil {
			t.Fatalf("StartLease: %v", err)
		}
		if _, err := s.Connect(ctx, "e1", 9999, "taken", now); err != nil {
			t.Fatalf("Connect: %v", err)
		}
		const n = 200
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				user := int64(i + 1)
				switch i % 3 {
				case 0:
					_, errs[i] = s.Connect(ctx, "e1", user, fmt.Sprintf("c%d", i), now)
				case 1:
					_, errs[i] = s.Connect(ctx, "gone", user, fmt.Sprintf("c%d", i), now)
				case 2:
					_, errs[i] = s.Connect(ctx, "e1", user, "taken", now)
				}
			})
		}
		wg.Wait()
		var ids []int64
		for i := range n {
			ids = append(ids, int64(i+1))
			var want error
			switch i % 3 {
			case 1:
				want = presence.ErrEdgeNotFound
			case 2:
				want = presence.ErrConnectionConflict
			}
			if !errors.Is(errs[i], want) {
				t.Fatalf("write %d: err %v, want %v", i, errs[i], want)
			}
		}
		got, err := s.Presences(ctx, ids)
		if err != nil {
			t.Fatalf("Presences: %v", err)
		}
		routes, err := s.Routes(ctx, ids)
		if err != nil {
			t.Fatalf("Routes: %v", err)
		}
		for i := range n {
			user := int64(i + 1)
			wantOnline := i%3 == 0
			if got[user].IsOnline != wantOnline || (len(routes[user]) > 0) != wantOnline {
				t.Fatalf("user %d: presence %+v routes %v, want online %v", user, got[user], routes[user], wantOnline)
			}
		}
	})
}

// TestUpsertKeepsLastSeen checks the setStatus upsert: LastSeen changes only going offline.
func TestUpsertKeepsLastSeen(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		ctx := context.Background()
		if err := s.StartLease(ctx, "e1", 1_000_000); err != nil {
			t.Fatalf("StartLease: %v", err)
		}
		steps := []struct {
			connect      bool
			at           int64
			wantChanged  bool
			wantOnline   bool
			wantLastSeen int64
		}{
			{true, 100, true, true, 0},
			{false, 200, true, false, 200},
			{true, 300, true, true, 200},
			{true, 301, false, true, 200},
			{false, 400, true, false, 400},
		}
		for i, st := range steps {
			var tr presence.Transition
			var err error
			conn := fmt.Sprintf("c%d", i)
			if st.connect {
				tr, err = s.Connect(ctx, "e1", 7, conn, st.at)
			} else {
				// Close every connection made so far.
				for j := range i {
					tr, err = s.Disconnect(ctx, "e1", 7, fmt.Sprintf("c%d", j), st.at)
					if err != nil {
						break
					}
				}
			}
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			p, err := s.Presences(ctx, []int64{7})
			if err != nil {
				t.Fatalf("step %d: Presences: %v", i, err)
			}
			if tr.Changed != st.wantChanged || tr.IsOnline != st.wantOnline || p[7].IsOnline != st.wantOnline || p[7].LastSeen != st.wantLastSeen {
				t.Fatalf("step %d: transition %+v, stored %+v; want online %v last seen %d", i, tr, p[7], st.wantOnline, st.wantLastSeen)
			}
		}
	})
}
