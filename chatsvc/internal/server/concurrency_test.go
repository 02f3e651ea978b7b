package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// TestConcurrentSends: concurrent senders in one chat each see their ids increase, every
// message is stored once and announced once, and ids and timestamps agree in order.
func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 2)
		ctx := context.Background()
		c12 := e.contact(t, 1, 2)
		e.online.set(1, true)
		e.online.set(2, true)
		e.drain()
		const workers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				from := int64(1 + w%2)
				var last int64
				for i := 0; i < each; i++ {
					res, err := e.client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{UserId: from, ChatId: c12, Text: fmt.Sprintf("w%d-%d", w, i)}))
					if err != nil {
						errs <- err
						return
					}
					if res.Msg.GetMessageId() <= last {
						errs <- fmt.Errorf("worker %d: id %d after %d", w, res.Msg.GetMessageId(), last)
						return
					}
					last = res.Msg.GetMessageId()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if got := len(e.drain()); got != workers*each {
			t.Fatalf("events: got %d, want %d", got, workers*each)
		}
		res, err := e.client.GetMessages(ctx, connect.NewRequest(&chatv1.GetMessagesRequest{UserId: 1, ChatId: c12, Limit: 200}))
		if err != nil {
			t.Fatal(err)
		}
		msgs := res.Msg.GetMessages()
		if len(msgs) != workers*each {
			t.Fatalf("stored: got %d, want %d", len(msgs), workers*each)
		}
		for i := 1; i < len(msgs); i++ {
			if msgs[i].GetId() <= msgs[i-1].GetId() || msgs[i].GetTimestamp() < msgs[i-1].GetTimestamp() {
				t.Fatalf("order at %d: got id %d ts %d after id %d ts %d", i, msgs[i].GetId(), msgs[i].GetTimestamp(), msgs[i-1].GetId(), msgs[i-1].GetTimestamp())
			}
		}
	})
}

// TestConcurrentRetries: many concurrent sends with one clientMessageId store one row,
// raise one event and all get the same ack.
func TestConcurrentRetries(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 2)
		ctx := context.Background()
		e.contact(t, 1, 2)
		e.online.set(2, true)
		e.drain()
		const keys, retries = 10, 12
		for k := 0; k < keys; k++ {
			var wg sync.WaitGroup
			ids := make(chan int64, retries)
			for r := 0; r < retries; r++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := e.client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{UserId: 1, ToUserId: 2, Text: "once", ClientMessageId: fmt.Sprintf("key-%d", k)}))
					if err != nil {
						t.Errorf("retry: %v", err)
						return
					}
					ids <- res.Msg.GetMessageId()
				}()
			}
			wg.Wait()
			close(ids)
			first := <-ids
			for id := range ids {
				if id != first {
					t.Fatalf("key %d: acks with ids %d and %d, want one", k, first, id)
				}
			}
		}
		var rows int
		if err := e.db.QueryRow("SELECT COUNT(*) FROM ChatMessage").Scan(&rows); err != nil || rows != keys {
			t.Fatalf("rows: got %d (%v), want %d", rows, err, keys)
		}
		if got := len(e.drain()); got != keys {
			t.Fatalf("events: got %d, want %d", got, keys)
		}
	})
}

// TestRandomInterleavings runs random sends, reads (from two tabs at once) and delivery
// receipts concurrently, then checks that every chat list unread count equals the messages
// still unread in history, and that the reads counted each message exactly once.
func TestRandomInterleavings(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 4)
		ctx := context.Background()
		chats := map[[2]int64]int64{}
		for a := int64(1); a <= 4; a++ {
			for b := a + 1; b <= 4; b++ {
				chats[[2]int64{a, b}] = e.contact(t, a, b)
				chats[[2]int64{b, a}] = chats[[2]int64{a, b}]
			}
		}
		seed := rand.Uint64()
		t.Logf("seed %d", seed)
		var readCount [5]map[int64]*atomic.Int64 // reader → chat → messages it marked read
		for u := 1; u <= 4; u++ {
			readCount[u] = map[int64]*atomic.Int64{}
			for k, c := range chats {
				if k[0] == int64(u) {
					readCount[u][c] = new(atomic.Int64)
				}
			}
		}
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, uint64(w)))
				user := int64(1 + w%4)
				for i := 0; i < 40; i++ {
					other := int64(1 + rng.IntN(4))
					if other == user {
						other = 1 + other%4
					}
					chatID := chats[[2]int64{user, other}]
					switch rng.IntN(5) {
					case 0, 1, 2:
						if _, err := e.client.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{UserId: user, ToUserId: other, Text: "r"})); err != nil {
							t.Errorf("send: %v", err)
							return
						}
					case 3:
						var upTo int64
						if rng.IntN(2) == 0 {
							upTo = int64(rng.IntN(200))
						}
						res, err := e.client.MarkRead(ctx, connect.NewRequest(&chatv1.MarkReadRequest{UserId: user, ChatId: chatID, UpToMessageId: upTo}))
						if err != nil {
							t.Errorf("read: %v", err)
							return
						}
						readCount[user][chatID].Add(res.Msg.GetUpdated())
					case 4:
						ids := []int64{int64(1 + rng.IntN(200)), int64(1 + rng.IntN(200))}
						if _, err := e.client.MarkDelivered(ctx, connect.NewRequest(&chatv1.MarkDeliveredRequest{UserId: user, MessageIds: ids})); err != nil {
							t.Errorf("delivered: %v", err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for u := int64(1); u <= 4; u++ {
			list, err := e.client.GetChatList(ctx, connect.NewRequest(&chatv1.GetChatListRequest{UserId: u}))
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Msg.GetChats()) != 3 {
				t.Fatalf("user %d: got %d chats, want 3", u, len(list.Msg.GetChats()))
			}
			for _, c := range list.Msg.GetChats() {
				page, err := e.client.GetMessages(ctx, connect.NewRequest(&chatv1.GetMessagesRequest{UserId: u, ChatId: c.GetChatId(), Limit: 200}))
				if err != nil {
					t.Fatal(err)
				}
				var unread, read int64
				for _, m := range page.Msg.GetMessages() {
					if m.GetToUserId() != u {
						continue
					}
					if m.GetStatus() == chatv1.MessageStatus_MESSAGE_STATUS_READ {
						read++
					} else {
						unread++
					}
				}
				if c.GetUnreadCount() != unread {
					t.Fatalf("user %d chat %d: unreadCount %d, history says %d", u, c.GetChatId(), c.GetUnreadCount(), unread)
				}
				if got := readCount[u][c.GetChatId()].Load(); got != read {
					t.Fatalf("user %d chat %d: MarkRead counted %d, history has %d read", u, c.GetChatId(), got, read)
				}
			}
		}
	})
}

// TestConcurrentReceipts: receipts from many concurrent MarkDelivered calls (each message
// reported twice, as by two edges) count every message once, and the delivered events
// name every message exactly once, each to its sender and in its chat.
func TestConcurrentReceipts(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		e := newEnv(t, url, 4)
		ctx := context.Background()
		chats := map[[2]int64]int64{{1, 2}: e.contact(t, 1, 2), {3, 2}: e.contact(t, 3, 2), {4, 2}: e.contact(t, 4, 2)}
		type sent struct{ chat, from int64 }
		msgs := map[int64]sent{}
		for i := 0; i < 30; i++ {
			for pair, chatID := range chats {
				res := e.send(t, &chatv1.SendMessageRequest{UserId: pair[0], ChatId: chatID, Text: "m"})
				msgs[res.GetMessageId()] = sent{chatID, pair[0]}
			}
		}
		for u := int64(1); u <= 4; u++ {
			e.online.set(u, true)
		}
		e.drain()
		var updated atomic.Int64
		var wg sync.WaitGroup
		for id := range msgs {
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := e.client.MarkDelivered(ctx, connect.NewRequest(&chatv1.MarkDeliveredRequest{UserId: 2, MessageIds: []int64{id}}))
					if err != nil {
						t.Errorf("MarkDelivered(%d): %v", id, err)
						return
					}
					updated.Add(res.Msg.GetUpdated())
				}()
			}
		}
		wg.Wait()
		if got := updated.Load(); got != int64(len(msgs)) {
			t.Fatalf("updated: got %d in all, want %d", got, len(msgs))
		}
		seen := map[int64]bool{}
		events := e.drain()
		for _, ev := range events {
			su := ev.GetMessageStatusUpdate()
			if su.GetStatus() != chatv1.MessageStatus_MESSAGE_STATUS_DELIVERED || len(ev.GetUserIds()) != 1 {
				t.Fatalf("event: got %v, want delivered to one user", ev)
			}
			for _, id := range su.GetMessageIds() {
				m, ok := msgs[id]
				if !ok || seen[id] || m.chat != su.GetChatId() || m.from != ev.GetUserIds()[0] {
					t.Fatalf("message %d in %v: want it once, in chat %d, to user %d", id, ev, m.chat, m.from)
				}
				seen[id] = true
			}
		}
		if len(seen) != len(msgs) {
			t.Fatalf("delivered events named %d messages, want %d", len(seen), len(msgs))
		}
		t.Logf("%d receipts, %d events", 2*len(msgs), len(events))
	})
}
