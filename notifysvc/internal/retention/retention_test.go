package retention

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/charla/charla/notifysvc/internal/notify"
	"github.com/charla/charla/notifysvc/internal/store"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

func TestPruneOnce(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		sdb := dbtest.OpenURL(t, url)
		if err := store.Migrate(ctx, sdb); err != nil {
			t.Fatal(err)
		}
		st := store.New(sdb)
		now := time.UnixMilli(10_000_000_000)
		create := func(user int64, age time.Duration) int64 {
			t.Helper()
			n, err := st.Create(ctx, notify.Notification{UserID: user, Type: "t", Title: "t", CreatedAt: now.Add(-age).UnixMilli()})
			if err != nil {
				t.Fatal(err)
			}
			return n.ID
		}
		count := func(user int64) int {
			t.Helper()
			page, err := st.List(ctx, notify.ListQuery{UserID: user, Limit: notify.MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			return len(page)
		}
		for range 7 {
			create(1, 2*time.Hour) // too old
		}
		for range 6 {
			create(1, time.Minute)
		}
		create(1, time.Hour-time.Millisecond) // just young enough
		create(2, time.Minute)
		create(2, time.Minute)

		p := New(st, Config{MaxAge: time.Hour, MaxPerUser: 3, Batch: 2, Now: func() time.Time { return now }}, nil)
		res, err := p.PruneOnce(ctx)
		if err != nil {
			t.Fatalf("PruneOnce: %v", err)
		}
		if want := (Result{Aged: 7, Excess: 4}); res != want {
			t.Fatalf("first run: got %+v, want %+v", res, want)
		}
		if got, want := count(1), 3; got != want {
			t.Fatalf("user 1 keeps: got %d, want %d", got, want)
		}
		if got, want := count(2), 2; got != want {
			t.Fatalf("user 2 keeps: got %d, want %d", got, want)
		}

		// Later runs check the users they were told about.
		newest := []int64{create(2, 0), create(2, 0)}
		p.Touch(2)
		res, err = p.PruneOnce(ctx)
		if err != nil {
			t.Fatalf("PruneOnce: %v", err)
		}
		if want := (Result{Excess: 1}); res != want {
			t.Fatalf("second run: got %+v, want %+v", res, want)
		}
		page, err := st.List(ctx, notify.ListQuery{UserID: 2, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != 3 || page[0].ID != newest[1] || page[1].ID != newest[0] {
			t.Fatalf("user 2 after second run: got %+v, want the newest 3 with %v first", page, newest)
		}

		// Nothing to do: nothing deleted.
		res, err = p.PruneOnce(ctx)
		if err != nil || res != (Result{}) {
			t.Fatalf("idle run: got %+v, %v; want nothing", res, err)
		}
	})
}

func TestRunStopsWithContext(t *testing.T) {
	t.Parallel()
	sdb := dbtest.OpenURL(t, dbtest.NewURL(t, "sqlite"))
	if err := store.Migrate(context.Background(), sdb); err != nil {
		t.Fatal(err)
	}
	st := store.New(sdb)
	p := New(st, Config{Interval: time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	cancel()
	<-done // hangs (and the test times out) if Run ignores ctx
}

// fakeStore is a Store whose methods are fields, for the pruner's bookkeeping.
type fakeStore struct {
	usersOver    func(keep int) ([]int64, error)
	deleteExcess func(user int64) (int64, error)
}

func (f *fakeStore) DeleteOlderThan(context.Context, int64, int) (int64, error) { return 0, nil }
func (f *fakeStore) UsersOver(_ context.Context, keep int) ([]int64, error) {
	return f.usersOver(keep)
}
func (f *fakeStore) DeleteExcess(_ context.Context, user int64, _, _ int) (int64, error) {
	return f.deleteExcess(user)
}

// TestPruneRetriesFailedUsers checks that users a failed run did not finish are checked on
// the next run, and that the full scan happens once.
func TestPruneRetriesFailedUsers(t *testing.T) {
	t.Parallel()
	scans := 0
	fail := true
	var checked []int64
	f := &fakeStore{
		usersOver: func(int) ([]int64, error) { scans++; return nil, nil },
		deleteExcess: func(user int64) (int64, error) {
			checked = append(checked, user)
			if user == 7 && fail {
				return 0, errors.New("database gone")
			}
			return 0, nil
		},
	}
	p := New(f, Config{}, nil)
	ctx := context.Background()
	if _, err := p.PruneOnce(ctx); err != nil || scans != 1 {
		t.Fatalf("first run: got %v and %d scans, want nil and 1", err, scans)
	}
	p.Touch(7)
	if _, err := p.PruneOnce(ctx); err == nil {
		t.Fatalf("run with a failing user: got nil error")
	}
	fail = false
	checked = nil
	if _, err := p.PruneOnce(ctx); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if len(checked) != 1 || checked[0] != 7 || scans != 1 {
		t.Fatalf("retry checked %v with %d scans; want [7] and still 1 scan", checked, scans)
	}
	checked = nil
	if _, err := p.PruneOnce(ctx); err != nil || len(checked) != 0 {
		t.Fatalf("idle run: checked %v, %v; want nothing", checked, err)
	}
}
