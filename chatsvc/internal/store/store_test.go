package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charla/charla/chatsvc/internal/chat"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// acceptedChat makes users 1 and 2 accepted contacts in s and returns their chat's id.
func acceptedChat(tb testing.TB, s *Store) int64 {
	tb.Helper()
	chatID, _, err := s.AcceptContact(context.Background(), 1, 2, 0)
	if err != nil {
		tb.Fatalf("accept contact 1-2: %v", err)
	}
	return chatID
}

func newStore(tb testing.TB, url string) *Store {
	tb.Helper()
	ctx := context.Background()
	db := dbtest.OpenURL(tb, url)
	s := New(db)
	if err := s.Migrate(ctx); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// TestMigrateTwice: applying the migrations again is a no-op.
func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatalf("second Migrate: got %v, want nil", err)
		}
	})
}

// TestWriter: queued messages get increasing ids and non-decreasing times, duplicates of
// one batch come back as the original, and Close stores what was queued.
func TestWriter(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		ctx := context.Background()
		chatID := acceptedChat(t, s)
		w := s.NewWriter(8, nil)
		var wg sync.WaitGroup
		results := make([]Inserted, 40)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cid := fmt.Sprintf("c%d", i%20) // every key twice
				ins, err := w.Insert(ctx, chat.Message{ChatID: chatID, FromUserID: 1, ToUserID: 2, Text: "t" + cid, ClientMessageID: cid})
				if err != nil {
					t.Errorf("Insert: %v", err)
				}
				results[i] = ins
			}()
		}
		wg.Wait()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Insert(ctx, chat.Message{ChatID: chatID, FromUserID: 1, ToUserID: 2, Text: "late"}); err != ErrWriterClosed {
			t.Fatalf("Insert after Close: got %v, want ErrWriterClosed", err)
		}
		dups := 0
		for i := 0; i < 20; i++ {
			a, b := results[i], results[i+20]
			if a.Message.ID != b.Message.ID || a.Duplicate == b.Duplicate {
				t.Fatalf("key c%d: got %+v and %+v, want one original and one duplicate of it", i, a, b)
			}
			dups++
		}
		msgs, _, err := s.Messages(ctx, chatID, 0, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 20 {
			t.Fatalf("stored: got %d, want 20", len(msgs))
		}
		byID := map[int64]chat.Message{}
		for _, m := range msgs {
			byID[m.ID] = m
		}
		for i, r := range results {
			if got := byID[r.Message.ID]; got.Text != r.Message.Text || got.ClientMessageID != r.Message.ClientMessageID || got.CreatedAt != r.Message.CreatedAt {
				t.Fatalf("result %d: got %+v, stored under its id %+v", i, r.Message, got)
			}
		}
		for i := 1; i < len(msgs); i++ {
			if msgs[i].CreatedAt < msgs[i-1].CreatedAt {
				t.Fatalf("times go back at %d: %d after %d", i, msgs[i].CreatedAt, msgs[i-1].CreatedAt)
			}
		}
	})
}

// TestWriterInsertMany: messages queued together are stored in their order (ids
// increasing), each answered in its position, a repeated clientMessageId with the
// original, a refused one (no accepted contact) as refused; after Close every position
// gets ErrWriterClosed.
func TestWriterInsertMany(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		ctx := context.Background()
		chatID := acceptedChat(t, s)
		w := s.NewWriter(0, nil)
		first, err := w.Insert(ctx, chat.Message{ChatID: chatID, FromUserID: 1, ToUserID: 2, Text: "first", ClientMessageID: "k"})
		if err != nil {
			t.Fatal(err)
		}
		msgs := []chat.Message{
			{ChatID: chatID, FromUserID: 1, ToUserID: 2, Text: "a"},
			{ChatID: chatID, FromUserID: 1, ToUserID: 2, Text: "first", ClientMessageID: "k"},
			{ChatID: chatID + 1000, FromUserID: 1, ToUserID: 3, Text: "no such contact"},
			{ChatID: chatID, FromUserID: 2, ToUserID: 1, Text: "b"},
		}
		out, errs := w.InsertMany(ctx, msgs)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		if out[0].Duplicate || out[0].Refused || out[0].Message.Text != "a" || out[0].Message.ID <= first.Message.ID {
			t.Fatalf("message 0: got %+v, want stored after the first", out[0])
		}
		if !out[1].Duplicate || out[1].Message.ID != first.Message.ID {
			t.Fatalf("message 1: got %+v, want the original %d", out[1], first.Message.ID)
		}
		if !out[2].Refused {
			t.Fatalf("message 2: got %+v, want refused", out[2])
		}
		if out[3].Message.Text != "b" || out[3].Message.ID <= out[0].Message.ID {
			t.Fatalf("message 3: got %+v, want stored after message 0 (%d)", out[3], out[0].Message.ID)
		}
		stored, _, err := s.Messages(ctx, chatID, 0, 0, 10)
		if err != nil || len(stored) != 3 {
			t.Fatalf("stored: got %d (%v), want 3", len(stored), err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_, errs = w.InsertMany(ctx, msgs[:2])
		for i, err := range errs {
			if err != ErrWriterClosed {
				t.Fatalf("InsertMany after Close, message %d: got %v, want ErrWriterClosed", i, err)
			}
		}
	})
}

// TestInsertMessagesBatch: one batch without duplicates (one multi-row INSERT on MySQL)
// and one with a duplicate (row by row) both return the ids of the stored rows.
func TestInsertMessagesBatch(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		ctx := context.Background()
		chatID := acceptedChat(t, s)
		batch := func(texts ...string) []Inserted {
			t.Helper()
			msgs := make([]chat.Message, len(texts))
			for i, text := range texts {
				msgs[i] = chat.Message{ChatID: chatID, FromUserID: 1, ToUserID: 2, Text: text, CreatedAt: int64(i), ClientMessageID: text}
			}
			res, err := s.InsertMessages(ctx, msgs)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		first := batch("a", "b", "c")
		second := batch("d", "b", "e", "d")
		stored, _, err := s.Messages(ctx, chatID, 0, 0, 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != 5 {
			t.Fatalf("stored: got %d, want 5", len(stored))
		}
		byID := map[int64]string{}
		for _, m := range stored {
			byID[m.ID] = m.Text
		}
		for _, r := range append(first, second...) {
			if byID[r.Message.ID] != r.Message.Text {
				t.Fatalf("id %d: stored %q, result says %q", r.Message.ID, byID[r.Message.ID], r.Message.Text)
			}
		}
		if second[1].Duplicate != true || second[1].Message.ID != first[1].Message.ID || !second[3].Duplicate || second[3].Message.ID != second[0].Message.ID {
			t.Fatalf("duplicates: got %+v", second)
		}
		if first[0].Message.ID >= first[1].Message.ID || first[1].Message.ID >= first[2].Message.ID {
			t.Fatalf("ids out of order: %+v", first)
		}
	})
}

// TestWriterCanceled: a caller that gave up before its batch started stores nothing.
func TestWriterCanceled(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		w := s.NewWriter(0, nil)
		defer w.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := w.Insert(ctx, chat.Message{ChatID: 1, FromUserID: 1, ToUserID: 2, Text: "x"}); err == nil {
			t.Fatalf("Insert with a canceled context: got nil error, want one")
		}
		msgs, _, err := s.Messages(context.Background(), 1, 0, 0, 10)
		if err != nil || len(msgs) != 0 {
			t.Fatalf("stored: got %d (%v), want 0", len(msgs), err)
		}
	})
}

// TestMarkReadConcurrent: concurrent MarkRead calls count each message exactly once.
func TestMarkReadConcurrent(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		ctx := context.Background()
		chatID := acceptedChat(t, s)
		w := s.NewWriter(0, nil)
		defer w.Close()
		var total atomic.Int64
		var wg sync.WaitGroup
		for r := 0; r < 4; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 30; i++ {
					if _, err := w.Insert(ctx, chat.Message{ChatID: chatID, FromUserID: 1, ToUserID: 2, Text: "x"}); err != nil {
						t.Error(err)
						return
					}
					ids, err := s.MarkRead(ctx, 2, chatID, 0)
					if err != nil {
						t.Error(err)
						return
					}
					total.Add(int64(len(ids)))
					if _, err := s.MarkDelivered(ctx, 2, ids); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if got := total.Load(); got != 120 {
			t.Fatalf("messages counted read: got %d, want 120", got)
		}
		sums, err := s.ChatSummaries(ctx, 2)
		if err != nil || len(sums) != 1 || sums[0].UnreadCount != 0 {
			t.Fatalf("summaries: got %+v, %v; want one chat with 0 unread", sums, err)
		}
	})
}

// BenchmarkWriter measures stored messages per second at the store, without RPC, with group
// commit (batch up to 256) and with one transaction per message (batch 1).
func BenchmarkWriter(b *testing.B) {
	for _, backend := range []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL} {
		for _, batch := range []int{1, DefaultMaxBatch} {
			b.Run(fmt.Sprintf("%s/batch=%d", backend, batch), func(b *testing.B) {
				s := newStore(b, dbtest.NewURL(b, backend))
				ctx := context.Background()
				chatID := acceptedChat(b, s)
				w := s.NewWriter(batch, nil)
				defer w.Close()
				b.SetParallelism(32)
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := w.Insert(ctx, chat.Message{ChatID: chatID, FromUserID: 1, ToUserID: 2, Text: "benchmark message"}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
				if batches, msgs := w.Stats(); batches > 0 {
					b.ReportMetric(float64(msgs)/float64(batches), "msgs/commit")
				}
			})
		}
	}
}
