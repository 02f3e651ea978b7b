package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/charla/charla/notifysvc/internal/notify"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// openStore returns a migrated store on a fresh database at url.
func openStore(t *testing.T, url string) (*Store, *sqldb.DB) {
	t.Helper()
	ctx := context.Background()
	db := dbtest.OpenURL(t, url)
	if err := Migrate(ctx, db); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	s := New(db)
	// Migrating twice is a no-op.
	if err := Migrate(ctx, db); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	return s, db
}

// create stores a notification for user at time ts and returns its id.
func create(t *testing.T, s *Store, user, ts int64) int64 {
	t.Helper()
	n, err := s.Create(context.Background(), notify.Notification{
		UserID: user, Type: "test", Title: fmt.Sprintf("t%d", ts), Message: "m", CreatedAt: ts,
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return n.ID
}

// checkUnread fails unless the unread counter of each user equals a count of their rows.
func checkUnread(t *testing.T, s *Store, users ...int64) {
	t.Helper()
	for _, u := range users {
		var want int64
		if err := s.db.QueryRow("SELECT COUNT(*) FROM Notification WHERE UserId = ? AND IsRead = 0", u).Scan(&want); err != nil {
			t.Fatal(err)
		}
		got, err := s.UnreadCount(context.Background(), u)
		if err != nil {
			t.Fatalf("UnreadCount: %v", err)
		}
		if got != want {
			t.Fatalf("unread count of user %d: got %d, want %d (counted)", u, got, want)
		}
	}
}

func ids(ns []notify.Notification) []int64 {
	out := make([]int64, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

func list(t *testing.T, s *Store, q notify.ListQuery) []int64 {
	t.Helper()
	page, err := s.List(context.Background(), q)
	if err != nil {
		t.Fatalf("List(%+v): %v", q, err)
	}
	for _, n := range page {
		if n.UserID != q.UserID {
			t.Fatalf("List(%+v) returned notification %d of user %d", q, n.ID, n.UserID)
		}
	}
	return ids(page)
}

func TestStore(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s, _ := openStore(t, url)
		ctx := context.Background()

		t.Run("create and read back byte-exact", func(t *testing.T) {
			in := notify.Notification{UserID: 7, Type: "new_message", Title: "Hola 😀", Message: "ñandú 𝄞",
				Payload: `{"chatId":"12","fromUserId":3}`, CreatedAt: 1_700_000_000_123}
			got, err := s.Create(ctx, in)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if got.ID <= 0 {
				t.Fatalf("id: got %d, want > 0", got.ID)
			}
			page, err := s.List(ctx, notify.ListQuery{UserID: 7, Limit: 10})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			in.ID = got.ID
			if len(page) != 1 || page[0] != in {
				t.Fatalf("List: got %+v, want [%+v]", page, in)
			}
			empty, err := s.Create(ctx, notify.Notification{UserID: 7, Type: "x", Title: "x", CreatedAt: 1})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if empty.Payload != notify.EmptyPayload {
				t.Fatalf("payload of none: got %q, want %q", empty.Payload, notify.EmptyPayload)
			}
		})

		t.Run("paging over equal timestamps", func(t *testing.T) {
			const user = 100
			var want []int64
			for range 23 {
				want = append(want, create(t, s, user, 5000)) // all at the same millisecond
			}
			create(t, s, user+1, 5000) // someone else's, interleaved
			slices.Reverse(want)
			for _, limit := range []int{1, 3, 7, 23, 50} {
				var got []int64
				before := int64(0)
				for {
					page := list(t, s, notify.ListQuery{UserID: user, Limit: limit, BeforeID: before})
					if len(page) > limit {
						t.Fatalf("page of limit %d: got %d items", limit, len(page))
					}
					got = append(got, page...)
					if len(page) < limit {
						break
					}
					before = page[len(page)-1]
				}
				if !slices.Equal(got, want) {
					t.Fatalf("limit %d: got %v, want %v", limit, got, want)
				}
			}
		})

		t.Run("before need not be the caller's", func(t *testing.T) {
			a1 := create(t, s, 200, 1)
			b1 := create(t, s, 201, 1)
			a2 := create(t, s, 200, 1)
			if got, want := list(t, s, notify.ListQuery{UserID: 200, Limit: 50, BeforeID: b1}), []int64{a1}; !slices.Equal(got, want) {
				t.Fatalf("before another user's id: got %v, want %v", got, want)
			}
			if got, want := list(t, s, notify.ListQuery{UserID: 200, Limit: 50, BeforeID: 1 << 62}), []int64{a2, a1}; !slices.Equal(got, want) {
				t.Fatalf("before a huge id: got %v, want %v", got, want)
			}
		})

		t.Run("unread only, unread count, mark read", func(t *testing.T) {
			const user, other = 300, 301
			n1 := create(t, s, user, 1)
			n2 := create(t, s, user, 2)
			n3 := create(t, s, user, 3)
			o1 := create(t, s, other, 1)
			unread := func(u int64) int64 {
				t.Helper()
				c, err := s.UnreadCount(ctx, u)
				if err != nil {
					t.Fatalf("UnreadCount: %v", err)
				}
				return c
			}
			if got := unread(user); got != 3 {
				t.Fatalf("unread: got %d, want 3", got)
			}
			n, err := s.MarkRead(ctx, user, n2)
			if err != nil || n != 1 {
				t.Fatalf("MarkRead: got %d, %v; want 1, nil", n, err)
			}
			n, err = s.MarkRead(ctx, user, n2)
			if err != nil || n != 0 {
				t.Fatalf("MarkRead again: got %d, %v; want 0, nil", n, err)
			}
			if got := unread(user); got != 2 {
				t.Fatalf("unread: got %d, want 2", got)
			}
			if got, want := list(t, s, notify.ListQuery{UserID: user, Limit: 50, UnreadOnly: true}), []int64{n3, n1}; !slices.Equal(got, want) {
				t.Fatalf("unread only: got %v, want %v", got, want)
			}
			if got, want := list(t, s, notify.ListQuery{UserID: user, Limit: 1, UnreadOnly: true, BeforeID: n3}), []int64{n1}; !slices.Equal(got, want) {
				t.Fatalf("unread only before: got %v, want %v", got, want)
			}
			page, err := s.List(ctx, notify.ListQuery{UserID: user, Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page {
				if got, want := p.IsRead, p.ID == n2; got != want {
					t.Fatalf("IsRead of %d: got %v, want %v", p.ID, got, want)
				}
			}

			// Another user's id and an unknown id: not found, nothing changes.
			for _, id := range []int64{o1, 1 << 60} {
				if _, err := s.MarkRead(ctx, user, id); !errors.Is(err, notify.ErrNotFound) {
					t.Fatalf("MarkRead(%d) of another user: got %v, want ErrNotFound", id, err)
				}
			}
			if got := unread(other); got != 1 {
				t.Fatalf("other's unread after refused mark: got %d, want 1", got)
			}

			n, err = s.MarkAllRead(ctx, user)
			if err != nil || n != 2 {
				t.Fatalf("MarkAllRead: got %d, %v; want 2, nil", n, err)
			}
			n, err = s.MarkAllRead(ctx, user)
			if err != nil || n != 0 {
				t.Fatalf("MarkAllRead again: got %d, %v; want 0, nil", n, err)
			}
			if got := unread(user); got != 0 {
				t.Fatalf("unread after all: got %d, want 0", got)
			}
			if got := unread(other); got != 1 {
				t.Fatalf("other's unread after mark all: got %d, want 1", got)
			}
			checkUnread(t, s, user, other, 999)
			if got := list(t, s, notify.ListQuery{UserID: user, Limit: 50, UnreadOnly: true}); len(got) != 0 {
				t.Fatalf("unread only after all: got %v, want none", got)
			}
		})

		t.Run("delete older than, in batches", func(t *testing.T) {
			// A database of its own, so other subtests' rows do not count.
			s, _ := openStore(t, dbtest.NewURL(t, s.db.Dialect))
			var keep []int64
			for i := range 12 {
				create(t, s, 1, int64(100+i)) // old
				keep = append(keep, create(t, s, 2, int64(1000+i)))
			}
			for _, id := range []int64{1, 3, 7} { // some of user 1's old ones (odd ids) read
				if _, err := s.MarkRead(ctx, 1, id); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.MarkRead(ctx, 2, keep[0]); err != nil {
				t.Fatal(err)
			}
			checkUnread(t, s, 1, 2)
			n, err := s.DeleteOlderThan(ctx, 1000, 5)
			if err != nil || n != 5 {
				t.Fatalf("first batch: got %d, %v; want 5, nil", n, err)
			}
			total := n
			for n == 5 {
				if n, err = s.DeleteOlderThan(ctx, 1000, 5); err != nil {
					t.Fatal(err)
				}
				total += n
			}
			if total != 12 {
				t.Fatalf("deleted: got %d, want 12", total)
			}
			checkUnread(t, s, 1, 2)
			if got := list(t, s, notify.ListQuery{UserID: 1, Limit: 50}); len(got) != 0 {
				t.Fatalf("old left: %v", got)
			}
			slices.Reverse(keep)
			if got := list(t, s, notify.ListQuery{UserID: 2, Limit: 50}); !slices.Equal(got, keep) {
				t.Fatalf("kept: got %v, want %v", got, keep)
			}
		})

		t.Run("delete excess per user", func(t *testing.T) {
			s, _ := openStore(t, dbtest.NewURL(t, s.db.Dialect))
			var a []int64
			for i := range 10 {
				a = append(a, create(t, s, 1, int64(i)))
				create(t, s, 2, int64(i))
			}
			create(t, s, 3, 1)
			if _, err := s.MarkRead(ctx, 1, a[0]); err != nil {
				t.Fatal(err)
			}
			if _, err := s.MarkRead(ctx, 1, a[9]); err != nil {
				t.Fatal(err)
			}
			over, err := s.UsersOver(ctx, 4)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(over)
			if want := []int64{1, 2}; !slices.Equal(over, want) {
				t.Fatalf("UsersOver: got %v, want %v", over, want)
			}
			n, err := s.DeleteExcess(ctx, 1, 4, 4)
			if err != nil || n != 4 {
				t.Fatalf("DeleteExcess: got %d, %v; want 4, nil", n, err)
			}
			n, err = s.DeleteExcess(ctx, 1, 4, 4)
			if err != nil || n != 2 {
				t.Fatalf("DeleteExcess again: got %d, %v; want 2, nil", n, err)
			}
			n, err = s.DeleteExcess(ctx, 1, 4, 4)
			if err != nil || n != 0 {
				t.Fatalf("DeleteExcess at the limit: got %d, %v; want 0, nil", n, err)
			}
			want := slices.Clone(a[6:])
			slices.Reverse(want)
			if got := list(t, s, notify.ListQuery{UserID: 1, Limit: 50}); !slices.Equal(got, want) {
				t.Fatalf("kept: got %v, want the newest 4 %v", got, want)
			}
			checkUnread(t, s, 1, 2, 3)
			if got := list(t, s, notify.ListQuery{UserID: 2, Limit: 50}); len(got) != 10 {
				t.Fatalf("other user's: got %d, want 10 untouched", len(got))
			}
		})
	})
}

// TestUnreadCounterUnderConcurrency runs creates, marks and prunes of the same users at
// once and checks that every unread counter still equals a count of the rows.
func TestUnreadCounterUnderConcurrency(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s, _ := openStore(t, url)
		ctx := context.Background()
		users := []int64{1, 2, 3}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 40 {
					u := users[(w+i)%len(users)]
					n, err := s.Create(ctx, notify.Notification{UserID: u, Type: "t", Title: "t", CreatedAt: int64(i)})
					if err != nil {
						errs <- err
						return
					}
					switch i % 5 {
					case 1:
						// Another worker's prune may have deleted it already.
						if _, err := s.MarkRead(ctx, u, n.ID); err != nil && !errors.Is(err, notify.ErrNotFound) {
							errs <- err
							return
						}
					case 3:
						if _, err := s.MarkAllRead(ctx, u); err != nil {
							errs <- err
							return
						}
					case 4:
						if _, err := s.DeleteExcess(ctx, u, 10, 3); err != nil {
							errs <- err
							return
						}
						if _, err := s.DeleteOlderThan(ctx, 5, 4); err != nil {
							errs <- err
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent writes: %v", err)
		}
		checkUnread(t, s, users...)
	})
}
