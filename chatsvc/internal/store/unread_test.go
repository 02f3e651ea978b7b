package store

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/charla/charla/chatsvc/internal/chat"
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

// TestUnreadQueriesUsePartialIndex: on SQLite, ChatMessage_Unread is a partial index
// (migration 00002), which the planner uses only for a query stating its predicate; the
// unread count of the chat list and MESSAGES_READ's select must search it.
func TestUnreadQueriesUsePartialIndex(t *testing.T) {
	t.Parallel()
	if chat.StatusRead != 3 {
		t.Fatalf("chat.StatusRead is %d: unreadSQL and the SQLite index say 3", chat.StatusRead)
	}
	s := newStore(t, "sqlite://"+filepath.Join(t.TempDir(), "plan.db"))
	var index string
	if err := s.db.QueryRow("SELECT sql FROM sqlite_master WHERE name = 'ChatMessage_Unread'").Scan(&index); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(index, "WHERE StatusId < 3") {
		t.Fatalf("ChatMessage_Unread is %q, want the partial index of unreadSQL", index)
	}
	statements := map[string][]any{
		chatSummariesSQL: {2, 2, chat.ContactAccepted, 2, chat.ContactAccepted},
		unreadIDsSQL:     {1, 2},
		unreadIDsUpToSQL: {1, 2, 10},
	}
	for q, args := range statements {
		plan := dbtest.SQLitePlan(t, s.db, q, args...)
		if !slices.ContainsFunc(plan, func(l string) bool { return strings.Contains(l, "INDEX ChatMessage_Unread") }) {
			t.Errorf("%s: plan %q, want a search of ChatMessage_Unread", q, plan)
		}
		for _, l := range plan {
			if strings.HasPrefix(l, "SCAN ChatMessage") || strings.HasPrefix(l, "SCAN u") {
				t.Errorf("%s: plan line %q scans the messages", q, l)
			}
		}
	}
}
