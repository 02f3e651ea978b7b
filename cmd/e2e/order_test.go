package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/charla/charla/edge"
)

// TestAckBeforeItsEvents: docs/protocol.md §3.4, "a command's SERVER_ACK is sent before any event
// the command causes on the same connection". Two users send each other many messages
// back to back; the recipient's edge writes each one, reports it delivered, and the chat
// service pushes MESSAGE_STATUS_UPDATE to the sender's connections, possibly before its
// SendMessage call has returned to the sending edge. On each sending connection, every
// message id of every status update must have been acknowledged earlier on it.
func TestAckBeforeItsEvents(t *testing.T) {
	t.Parallel()
	const n = 150
	sys := startEdgeSystem(t, func(c *edge.Config) {
		c.Hub.RateLimit = 0                 // back to back, unthrottled
		c.ReceiptInterval = time.Nanosecond // receipts at once: the status update races the ack
	})
	alice, bob := sys.NewUser(t, "oa"), sys.NewUser(t, "ob")
	sys.Contact(t, alice, bob)
	a := dial(t, sys, alice.Token, "a")
	b := dial(t, sys, bob.Token, "b")
	for _, c := range []*wsClient{a, b} {
		c.call("GET_CHAT_LIST", nil) // connected and routed
	}
	type side struct {
		c    *wsClient
		to   int64
		pids map[string]bool
	}
	sides := []*side{{c: a, to: bob.ID, pids: map[string]bool{}}, {c: b, to: alice.ID, pids: map[string]bool{}}}
	for i := range n {
		for _, s := range sides {
			pid := s.c.send("SEND_CHAT_MESSAGE", map[string]any{"toUserId": s.to, "text": fmt.Sprintf("m%d", i)})
			s.pids[pid] = true
		}
	}
	for _, s := range sides {
		acked := map[string]bool{}     // message ids acknowledged so far on this connection
		delivered := map[string]bool{} // message ids reported delivered
		for len(acked) < n || len(delivered) < n {
			f := s.c.next()
			switch {
			case s.pids[f.PID] && !isEvent(f.Type):
				if f.Type != "SERVER_ACK" {
					t.Fatalf("%s: reply %s %s, want SERVER_ACK", s.c.name, f.Type, f.Payload)
				}
				var ack struct{ MessageID string }
				f.decode(t, &ack)
				acked[ack.MessageID] = true
			case f.Type == "MESSAGE_STATUS_UPDATE":
				var u statusUpdate
				f.decode(t, &u)
				for _, id := range u.MessageIDs {
					if !acked[id] {
						t.Fatalf("%s: MESSAGE_STATUS_UPDATE %s for message %s before its SERVER_ACK (acked so far: %d)",
							s.c.name, u.Status, id, len(acked))
					}
					if u.Status == "delivered" {
						delivered[id] = true
					}
				}
			}
		}
		if len(acked) != n {
			t.Errorf("%s: acked %d, want %d", s.c.name, len(acked), n)
		}
	}
}
