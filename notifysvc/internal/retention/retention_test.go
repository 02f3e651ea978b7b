package retention

import (
	"context"
	"testing"
	"time"

	"github.com/charla/charla/notifysvc/internal/notify"
	"github.com/charla/charla/notifysvc/internal/store"
	"github.com/charla/charla/notifysvc/internal/testdb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

func TestPruneOnce(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		st, err := store.New(ctx, testdb.Open(t, url))
		if err != nil {
			t.Fatal(err)
		}
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
	st, err := store.New(context.Background(), testdb.Open(t, dbtest.NewURL(t, "sqlite")))
	if err != nil {
		t.Fatal(err)
	}
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
