package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/charla/charla/chatsvc/internal/chat"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// TestUnreadAcrossStatuses: a delivered message is still unread (counted, and read by
// MESSAGES_READ); a read one is neither; each user counts only the messages to them.
func TestUnreadAcrossStatuses(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s := newStore(t, url)
		chatID := accept(t, s, 1, 2)
		toTwo := chat.Message{ChatID: chatID, FromUserID: 1, ToUserID: 2, Text: "hola"}
		ids := insert(t, s, toTwo, toTwo, toTwo, toTwo, toTwo,
			chat.Message{ChatID: chatID, FromUserID: 2, ToUserID: 1, Text: "qué tal"})
		if _, err := s.MarkDelivered(ctx, 2, ids[:2]); err != nil {
			t.Fatal(err)
		}
		unread := func(user int64) int64 {
			t.Helper()
			sums, err := s.ChatSummaries(ctx, user)
			if err != nil || len(sums) != 1 {
				t.Fatalf("summaries of %d: got %+v, %v; want one chat", user, sums, err)
			}
			return sums[0].UnreadCount
		}
		if got1, got2 := unread(1), unread(2); got1 != 1 || got2 != 5 {
			t.Fatalf("unread before reading: user 1 %d, user 2 %d; want 1 and 5 (delivered counts)", got1, got2)
		}
		read, err := s.MarkRead(ctx, 2, chatID, ids[2])
		if err != nil || !slices.Equal(read, ids[:3]) {
			t.Fatalf("MarkRead up to %d: got %v, %v; want %v (two delivered, one sent)", ids[2], read, err, ids[:3])
		}
		if st := statusOf(t, s, ids[0]); st != chat.StatusRead {
			t.Fatalf("status of a delivered message after reading: %v, want read", st)
		}
		if got := unread(2); got != 2 {
			t.Fatalf("unread of user 2 after reading 3: %d, want 2", got)
		}
		if _, err := s.MarkDelivered(ctx, 2, ids[3:4]); err != nil {
			t.Fatal(err)
		}
		if read, err = s.MarkRead(ctx, 2, chatID, 0); err != nil || !slices.Equal(read, ids[3:5]) {
			t.Fatalf("MarkRead all: got %v, %v; want %v", read, err, ids[3:5])
		}
		if read, err = s.MarkRead(ctx, 2, chatID, 0); err != nil || len(read) != 0 {
			t.Fatalf("MarkRead again: got %v, %v; want none", read, err)
		}
		if got1, got2 := unread(1), unread(2); got1 != 1 || got2 != 0 {
			t.Fatalf("unread after reading: user 1 %d, user 2 %d; want 1 and 0", got1, got2)
		}
	})
}

// TestUnreadQueriesUseIndexes: on SQLite the chat list reads each count from ChatUnread's
// key and MESSAGES_READ's select is a range of ChatMessage_Chat; neither scans the messages.
func TestUnreadQueriesUseIndexes(t *testing.T) {
	t.Parallel()
	if chat.StatusRead != 3 {
		t.Fatalf("chat.StatusRead is %d: unreadIDsSQL says 3", chat.StatusRead)
	}
	s := newStore(t, "sqlite://"+filepath.Join(t.TempDir(), "plan.db"))
	statements := map[string]string{
		chatSummariesSQL: "SEARCH u USING PRIMARY KEY (ChatId=? AND UserId=?)",
		unreadIDsSQL:     "INDEX ChatMessage_Chat",
		unreadIDsUpToSQL: "INDEX ChatMessage_Chat",
	}
	args := map[string][]any{
		chatSummariesSQL: {2, 2, chat.ContactAccepted, 2, chat.ContactAccepted},
		unreadIDsSQL:     {1, 5, 2},
		unreadIDsUpToSQL: {1, 5, 2, 10},
	}
	for q, want := range statements {
		plan := dbtest.SQLitePlan(t, s.db, q, args[q]...)
		if !slices.ContainsFunc(plan, func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("%s: plan %q, want a search of %s", q, plan, want)
		}
		for _, l := range plan {
			if strings.HasPrefix(l, "SCAN ChatMessage") || strings.HasPrefix(l, "SCAN u") {
				t.Errorf("%s: plan line %q scans the messages", q, l)
			}
		}
	}
}

// checkUnreadCounts fails unless every ChatUnread row holds the number of unread messages
// to its user in its chat, none of them below its MinId, and every unread message is
// counted.
func checkUnreadCounts(tb testing.TB, s *Store, step string) {
	tb.Helper()
	type pair struct{ chat, user int64 }
	type count struct{ n, minID int64 }
	read := func(q string) map[pair]count {
		tb.Helper()
		rows, err := s.db.Query(q)
		if err != nil {
			tb.Fatalf("%s: %v", step, err)
		}
		defer rows.Close()
		out := map[pair]count{}
		for rows.Next() {
			var (
				p pair
				c count
			)
			if err := rows.Scan(&p.chat, &p.user, &c.n, &c.minID); err != nil {
				tb.Fatalf("%s: %v", step, err)
			}
			if c.n > 0 {
				out[p] = c
			}
		}
		if err := rows.Err(); err != nil {
			tb.Fatalf("%s: %v", step, err)
		}
		return out
	}
	counted := read("SELECT ChatId, UserId, Unread, MinId FROM ChatUnread")
	actual := read("SELECT ChatId, ToUserId, COUNT(*), MIN(Id) FROM ChatMessage WHERE StatusId < 3 GROUP BY ChatId, ToUserId")
	for p, a := range actual {
		c, ok := counted[p]
		switch {
		case !ok:
			tb.Fatalf("%s: chat %d, user %d: %d unread messages not counted", step, p.chat, p.user, a.n)
		case c.n != a.n:
			tb.Fatalf("%s: chat %d, user %d: counted %d unread, %d are", step, p.chat, p.user, c.n, a.n)
		case c.minID > a.minID:
			tb.Fatalf("%s: chat %d, user %d: MinId %d above the unread message %d", step, p.chat, p.user, c.minID, a.minID)
		}
	}
	for p, c := range counted {
		if _, ok := actual[p]; !ok {
			tb.Fatalf("%s: chat %d, user %d: counted %d unread, none is", step, p.chat, p.user, c.n)
		}
	}
}

// TestUnreadCountsFollowMessages: through a random run of sends (through the writer, with
// repeats and refusals), receipts and reads (all, or up to a random id), the counts stay
// the number of unread rows, and each MESSAGES_READ marks exactly the unread messages in
// its range.
func TestUnreadCountsFollowMessages(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s := newStore(t, url)
		chats := map[[2]int64]int64{}
		for _, p := range [][2]int64{{1, 2}, {1, 3}, {2, 3}} {
			chats[p] = accept(t, s, p[0], p[1])
		}
		removed := accept(t, s, 1, 4)
		if _, err := s.RemoveContact(ctx, 1, 4); err != nil {
			t.Fatal(err)
		}
		pairs := [][2]int64{{1, 2}, {2, 1}, {1, 3}, {3, 1}, {2, 3}, {3, 2}}
		chatOf := func(from, to int64) int64 { return chats[[2]int64{min(from, to), max(from, to)}] }
		w := s.NewWriter(16, nil)
		defer w.Close()
		rng := rand.New(rand.NewPCG(16, 5))
		var sent []chat.Message
		for step := range 300 {
			switch op := rng.IntN(10); {
			case op < 6: // a burst of sends, some repeating a client id, one maybe refused
				var msgs []chat.Message
				for range 1 + rng.IntN(8) {
					p := pairs[rng.IntN(len(pairs))]
					m := chat.Message{ChatID: chatOf(p[0], p[1]), FromUserID: p[0], ToUserID: p[1], Text: "m",
						ClientMessageID: fmt.Sprintf("c%d", rng.IntN(400))}
					if rng.IntN(20) == 0 {
						m.ChatID, m.ToUserID = removed, 4
					}
					msgs = append(msgs, m)
				}
				out, errs := w.InsertMany(ctx, msgs)
				for i, in := range out {
					if errs[i] != nil {
						t.Fatalf("step %d: insert: %v", step, errs[i])
					}
					if !in.Duplicate && !in.Refused {
						sent = append(sent, in.Message)
					}
				}
			case op < 8 && len(sent) > 0: // a receipt for some messages to one user
				to := sent[rng.IntN(len(sent))].ToUserID
				var ids []int64
				for _, m := range sent {
					if m.ToUserID == to && rng.IntN(2) == 0 {
						ids = append(ids, m.ID)
					}
				}
				if _, err := w.Deliver(ctx, to, ids); err != nil {
					t.Fatalf("step %d: deliver: %v", step, err)
				}
			case len(sent) > 0: // MESSAGES_READ, up to a recent message of the chat (or any), or all
				m := sent[len(sent)-1-rng.IntN(min(len(sent), 12))]
				if rng.IntN(4) == 0 {
					m = sent[rng.IntN(len(sent))]
				}
				upTo := m.ID
				if rng.IntN(3) == 0 {
					upTo = 0
				}
				var want []int64
				for _, id := range unreadIDs(t, s, m.ChatID, m.ToUserID) {
					if upTo == 0 || id <= upTo {
						want = append(want, id)
					}
				}
				got, err := s.MarkRead(ctx, m.ToUserID, m.ChatID, upTo)
				if err != nil || !slices.Equal(got, want) {
					t.Fatalf("step %d: MarkRead(%d, chat %d, up to %d): got %v, %v; want %v", step, m.ToUserID, m.ChatID, upTo, got, err, want)
				}
			}
			checkUnreadCounts(t, s, fmt.Sprintf("step %d", step))
		}
	})
}

// unreadIDs lists the unread messages to user in chatID, ascending, straight from the rows.
func unreadIDs(tb testing.TB, s *Store, chatID, user int64) []int64 {
	tb.Helper()
	rows, err := s.db.Query("SELECT Id FROM ChatMessage WHERE ChatId = ? AND ToUserId = ? AND StatusId < 3 ORDER BY Id", chatID, user)
	if err != nil {
		tb.Fatal(err)
	}
	ids, err := scanIDs(rows, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

// TestMarkReadBesideUncommittedMessage (MySQL): a message that has its id but commits after
// a MESSAGES_READ whose bound is above that id (InnoDB hands ids out at INSERT, and commits
// come in any order) is not read by it, stays counted, and the next MESSAGES_READ finds it:
// counting it lowers the chat's MinId again. Without that the bound would have moved past
// it and it would stay unread forever.
func TestMarkReadBesideUncommittedMessage(t *testing.T) {
	t.Parallel()
	// On SQLite a write transaction excludes every other, so a message is inserted and
	// counted before any MarkRead can run: there is no such window.
	s := newStore(t, dbtest.NewURL(t, sqldb.MySQL))
	ctx := context.Background()
	chatID := accept(t, s, 1, 2)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ins, err := s.insertMessagesTx(ctx, tx, []chat.Message{{ChatID: chatID, FromUserID: 1, ToUserID: 2, Text: "slow"}})
	if err != nil {
		t.Fatal(err)
	}
	slow := ins[0].Message.ID
	fast := insert(t, s, chat.Message{ChatID: chatID, FromUserID: 1, ToUserID: 2, Text: "fast"})[0]
	if fast <= slow {
		t.Fatalf("the later insert got id %d, not above the pending one's %d", fast, slow)
	}
	if got, err := s.MarkRead(ctx, 2, chatID, fast); err != nil || !slices.Equal(got, []int64{fast}) {
		t.Fatalf("MarkRead up to %d beside the pending message %d: got %v, %v; want [%d]", fast, slow, got, err, fast)
	}
	if err := s.countUnreadTx(ctx, tx, ins); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	checkUnreadCounts(t, s, "after the pending message committed")
	if got, err := s.MarkRead(ctx, 2, chatID, fast); err != nil || !slices.Equal(got, []int64{slow}) {
		t.Fatalf("MarkRead up to %d again: got %v, %v; want [%d], the message that committed late", fast, got, err, slow)
	}
	checkUnreadCounts(t, s, "after reading it")
}

// TestUnreadCountsMigrated: the migration that brings ChatUnread counts the unread messages
// a database already holds, so reading them after the upgrade works as before.
func TestUnreadCountsMigrated(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := dbtest.OpenURL(t, url)
		before := dbtest.MigrationsBefore(t, migrations, "_unread_counts.sql")
		if err := sqldb.Migrate(ctx, db, "chat", before); err != nil {
			t.Fatalf("migrate to the version before ChatUnread: %v", err)
		}
		// Chat 7: three messages to 2 (one read, one delivered), one to 1; chat 8: one read.
		rows := []struct{ id, chat, from, to, status int64 }{
			{1, 7, 1, 2, 3}, {2, 7, 1, 2, 2}, {3, 7, 2, 1, 1}, {4, 7, 1, 2, 1}, {5, 8, 3, 1, 3},
		}
		for _, r := range rows {
			if _, err := db.Exec("INSERT INTO ChatMessage (Id, ChatId, FromUserId, ToUserId, Content, CreatedAt, StatusId) VALUES (?, ?, ?, ?, 'x', 0, ?)",
				r.id, r.chat, r.from, r.to, r.status); err != nil {
				t.Fatal(err)
			}
		}
		s := New(db)
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		checkUnreadCounts(t, s, "after the migration")
		if got, err := s.MarkRead(ctx, 2, 7, 0); err != nil || !slices.Equal(got, []int64{2, 4}) {
			t.Fatalf("MarkRead of chat 7 by 2: got %v, %v; want [2 4]", got, err)
		}
		checkUnreadCounts(t, s, "after reading")
	})
}
