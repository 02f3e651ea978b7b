package store

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/charla/charla/chatsvc/internal/chat"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// insert stores one message per (chat, from, to) triple and returns their ids.
func insert(tb testing.TB, s *Store, msgs ...chat.Message) []int64 {
	tb.Helper()
	res, err := s.InsertMessages(context.Background(), msgs)
	if err != nil {
		tb.Fatalf("InsertMessages: %v", err)
	}
	ids := make([]int64, len(res))
	for i, r := range res {
		if r.Refused || r.Duplicate {
			tb.Fatalf("message %d: got %+v, want stored", i, r)
		}
		ids[i] = r.Message.ID
	}
	return ids
}

func accept(tb testing.TB, s *Store, a, b int64) int64 {
	tb.Helper()
	id, _, err := s.AcceptContact(context.Background(), a, b, 0)
	if err != nil {
		tb.Fatalf("AcceptContact(%d, %d): %v", a, b, err)
	}
	return id
}

func statusOf(tb testing.TB, s *Store, id int64) chat.Status {
	tb.Helper()
	var st chat.Status
	if err := s.db.QueryRow("SELECT StatusId FROM ChatMessage WHERE Id = ?", id).Scan(&st); err != nil {
		tb.Fatalf("status of %d: %v", id, err)
	}
	return st
}

func deliveredIDs(ds []Delivered) []int64 {
	out := []int64{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// TestMarkDeliveredBatch: receipts of several recipients in one transaction move only
// their own sent messages, forward only (a read message stays read), each change counted
// for the first receipt that lists it, and a repeat changes nothing.
func TestMarkDeliveredBatch(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		ctx := context.Background()
		a, b, c := accept(t, s, 1, 2), accept(t, s, 3, 2), accept(t, s, 1, 3)
		ids := insert(t, s,
			chat.Message{ChatID: a, FromUserID: 1, ToUserID: 2, Text: "m0"},
			chat.Message{ChatID: a, FromUserID: 1, ToUserID: 2, Text: "m1"},
			chat.Message{ChatID: a, FromUserID: 1, ToUserID: 2, Text: "m2"},
			chat.Message{ChatID: b, FromUserID: 3, ToUserID: 2, Text: "m3"},
			chat.Message{ChatID: c, FromUserID: 1, ToUserID: 3, Text: "m4"},
			chat.Message{ChatID: a, FromUserID: 2, ToUserID: 1, Text: "m5"},
		)
		m0, m1, m2, m3, m4, m5 := ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]
		if read, err := s.MarkRead(ctx, 2, a, m0); err != nil || !slices.Equal(read, []int64{m0}) {
			t.Fatalf("MarkRead: got %v, %v; want [%d]", read, err, m0)
		}
		receipts := []Receipt{
			{Recipient: 2, IDs: []int64{m0, m3, m1, m4, m1}}, // m0 read, m4 not to 2, m1 twice
			{Recipient: 3, IDs: []int64{m4, m3}},             // m3 not to 3
			{Recipient: 2, IDs: []int64{m1, m2}},             // m1 already counted above
			{Recipient: 1, IDs: []int64{m5, 1 << 40}},        // a missing id
		}
		got, err := s.MarkDeliveredBatch(ctx, receipts)
		if err != nil {
			t.Fatal(err)
		}
		want := [][]int64{{m1, m3}, {m4}, {m2}, {m5}}
		for i := range want {
			if !slices.Equal(deliveredIDs(got[i]), want[i]) {
				t.Fatalf("receipt %d: got %v, want %v", i, deliveredIDs(got[i]), want[i])
			}
		}
		if d := got[0][1]; d.ChatID != b || d.FromUserID != 3 {
			t.Fatalf("m3's change: got %+v, want chat %d from 3", d, b)
		}
		for id, st := range map[int64]chat.Status{m0: chat.StatusRead, m1: chat.StatusDelivered, m2: chat.StatusDelivered,
			m3: chat.StatusDelivered, m4: chat.StatusDelivered, m5: chat.StatusDelivered} {
			if got := statusOf(t, s, id); got != st {
				t.Fatalf("status of %d: got %d, want %d", id, got, st)
			}
		}
		again, err := s.MarkDeliveredBatch(ctx, receipts)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range again {
			if len(r) != 0 {
				t.Fatalf("repeat, receipt %d: got %v, want nothing", i, deliveredIDs(r))
			}
		}
		// Read skips delivered, and delivered never comes after read.
		if _, err := s.MarkRead(ctx, 2, a, 0); err != nil {
			t.Fatal(err)
		}
		if got, err := s.MarkDelivered(ctx, 2, []int64{m1, m2}); err != nil || len(got) != 0 {
			t.Fatalf("receipt after read: got %v, %v; want nothing", got, err)
		}
		if got := statusOf(t, s, m2); got != chat.StatusRead {
			t.Fatalf("status of %d after a late receipt: got %d, want read", m2, got)
		}
	})
}

// TestWriterCoalescesReceipts: receipts queued together are applied in the batch of the
// inserts queued with them, and their changes come back as one group per chat and sender,
// each given to exactly one caller that changed one of its messages.
func TestWriterCoalescesReceipts(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		s := newStore(t, url)
		ctx := context.Background()
		a, b, c := accept(t, s, 1, 2), accept(t, s, 3, 2), accept(t, s, 1, 3)
		ids := insert(t, s,
			chat.Message{ChatID: a, FromUserID: 1, ToUserID: 2, Text: "a1"},
			chat.Message{ChatID: a, FromUserID: 1, ToUserID: 2, Text: "a2"},
			chat.Message{ChatID: a, FromUserID: 1, ToUserID: 2, Text: "a3"},
			chat.Message{ChatID: b, FromUserID: 3, ToUserID: 2, Text: "b1"},
			chat.Message{ChatID: b, FromUserID: 3, ToUserID: 2, Text: "b2"},
			chat.Message{ChatID: c, FromUserID: 1, ToUserID: 3, Text: "c1"},
		)
		a1, a2, a3, b1, b2, c1 := ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]

		w := s.newWriter(0, nil) // not running: the calls below queue up as one batch
		calls := []struct {
			user int64
			ids  []int64
			want []int64 // Changed
		}{
			{2, []int64{a1}, []int64{a1}},
			{2, []int64{a2, b1}, []int64{a2, b1}},
			{2, []int64{a3, b2}, []int64{a3, b2}},
			{3, []int64{c1}, []int64{c1}},
		}
		var wg sync.WaitGroup
		results := make([]Delivery, len(calls))
		for i, call := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := w.Deliver(ctx, call.user, call.ids)
				if err != nil {
					t.Errorf("Deliver(%d, %v): %v", call.user, call.ids, err)
				}
				results[i] = d
			}()
		}
		var inserted Inserted
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if inserted, err = w.Insert(ctx, chat.Message{ChatID: a, FromUserID: 2, ToUserID: 1, Text: "in the same batch"}); err != nil {
				t.Errorf("Insert: %v", err)
			}
		}()
		for len(w.reqs) < len(calls)+1 {
			runtime.Gosched()
		}
		go w.run()
		wg.Wait()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if batches, ops := w.Stats(); batches != 1 || ops != int64(len(calls)+1) {
			t.Fatalf("writer: got %d batches of %d operations, want 1 of %d", batches, ops, len(calls)+1)
		}
		if inserted.Message.ID <= c1 {
			t.Fatalf("insert in the batch: got %+v, want a new id", inserted)
		}
		type key struct{ chat, from int64 }
		groups := map[key][]int64{}
		for i, r := range results {
			if !slices.Equal(r.Changed, calls[i].want) {
				t.Fatalf("call %d: changed %v, want %v", i, r.Changed, calls[i].want)
			}
			for _, g := range r.Announce {
				k := key{g.ChatID, g.FromUserID}
				if _, dup := groups[k]; dup {
					t.Fatalf("group %+v announced twice", k)
				}
				groups[k] = g.IDs
				if !slices.ContainsFunc(g.IDs, func(id int64) bool { return slices.Contains(r.Changed, id) }) {
					t.Fatalf("call %d announces %+v but changed none of it (%v)", i, g, r.Changed)
				}
			}
		}
		want := map[key][]int64{{a, 1}: {a1, a2, a3}, {b, 3}: {b1, b2}, {c, 1}: {c1}}
		if len(groups) != len(want) {
			t.Fatalf("groups: got %v, want %v", groups, want)
		}
		for k, ids := range want {
			if !slices.Equal(groups[k], ids) {
				t.Fatalf("group %+v: got %v, want %v", k, groups[k], ids)
			}
		}
	})
}
