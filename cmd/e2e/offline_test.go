package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/cmd/internal/system/systemtest"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
)

type notification struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Payload map[string]any `json:"payload"`
}

type notificationList struct {
	Notifications []notification `json:"notifications"`
	UnreadCount   int            `json:"unreadCount"`
}

// waitOffline polls presence until user has no connection anywhere.
func waitOffline(t *testing.T, sys *systemtest.System, user int64) {
	t.Helper()
	for deadline := time.Now().Add(waitLimit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		res, err := sys.Clients.Presence.GetPresence(context.Background(), connect.NewRequest(&presencev1.GetPresenceRequest{UserIds: []int64{user}}))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Msg.GetPresences()[0].GetIsOnline() {
			return
		}
	}
	t.Fatalf("user %d still online after %v", user, waitLimit)
}

func ofType(list notificationList, typ string) []notification {
	var out []notification
	for _, n := range list.Notifications {
		if n.Type == typ {
			out = append(out, n)
		}
	}
	return out
}

// TestOfflineRecipient: contact_added reaches both users; messages to a user with no
// connection are stored, counted unread and raise one new_message notification per chat
// (not one per message) until the chat is read; after reconnecting, the chat list, history
// and receipts show everything, and the next message after reading raises a new one.
func TestOfflineRecipient(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob := sys.NewUser(t, "off"), sys.NewUser(t, "off")
	chatID := strconv.FormatInt(sys.Contact(t, alice, bob), 10)

	a := dial(t, sys, alice.Token, "alice")
	var aliceList notificationList
	a.call("GET_NOTIFICATIONS", nil).decode(t, &aliceList)
	added := ofType(aliceList, "contact_added")
	if len(added) != 1 || added[0].Payload["userName"] != bob.UserName || fmt.Sprint(added[0].Payload["userId"]) != strconv.FormatInt(bob.ID, 10) {
		t.Fatalf("alice's contact_added: got %+v, want one naming %s (%d)", added, bob.UserName, bob.ID)
	}

	var sent []string
	for i := range 3 {
		var ack struct {
			MessageID string `json:"messageId"`
		}
		f := a.call("SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": fmt.Sprintf("offline %d", i)})
		if f.Type != "SERVER_ACK" {
			t.Fatalf("send %d: got %s %s", i, f.Type, f.Payload)
		}
		f.decode(t, &ack)
		sent = append(sent, ack.MessageID)
	}

	b := dial(t, sys, bob.Token, "bob")
	var bobList notificationList
	b.call("GET_NOTIFICATIONS", nil).decode(t, &bobList)
	if got := ofType(bobList, "contact_added"); len(got) != 1 || got[0].Payload["userName"] != alice.UserName {
		t.Errorf("bob's contact_added: got %+v, want one naming %s", got, alice.UserName)
	}
	newMessage := ofType(bobList, "new_message")
	if len(newMessage) != 1 || newMessage[0].Payload["chatId"] != chatID || fmt.Sprint(newMessage[0].Payload["fromUserId"]) != strconv.FormatInt(alice.ID, 10) {
		t.Fatalf("bob's new_message notifications: got %+v, want exactly one for chat %s from %d", newMessage, chatID, alice.ID)
	}

	var chats struct {
		Chats []struct {
			ChatID        string `json:"chatId"`
			LastMessage   string `json:"lastMessage"`
			UnreadCount   int    `json:"unreadCount"`
			IsOtherOnline bool   `json:"isOtherOnline"`
		} `json:"chats"`
	}
	b.call("GET_CHAT_LIST", nil).decode(t, &chats)
	if len(chats.Chats) != 1 || chats.Chats[0].ChatID != chatID || chats.Chats[0].UnreadCount != 3 || chats.Chats[0].LastMessage != "offline 2" || !chats.Chats[0].IsOtherOnline {
		t.Errorf("bob's chat list: got %+v, want chat %s with 3 unread, last \"offline 2\", alice online", chats.Chats, chatID)
	}

	var history struct {
		Messages []chatMessage `json:"messages"`
		HasMore  bool          `json:"hasMore"`
	}
	b.call("GET_CHAT_MESSAGES", map[string]any{"chatId": chatID}).decode(t, &history)
	if len(history.Messages) != 3 || history.HasMore {
		t.Fatalf("bob's history: got %d messages (hasMore %v), want 3", len(history.Messages), history.HasMore)
	}
	for i, m := range history.Messages {
		if m.ID != sent[i] || m.Text != fmt.Sprintf("offline %d", i) {
			t.Errorf("history[%d] = %s %q, want %s %q", i, m.ID, m.Text, sent[i], fmt.Sprintf("offline %d", i))
		}
	}
	// Fetching them counts as delivered: alice hears of all three.
	delivered := map[string]bool{}
	for len(delivered) < 3 {
		var su statusUpdate
		a.event("MESSAGE_STATUS_UPDATE", nil).decode(t, &su)
		if su.Status != "delivered" {
			t.Fatalf("alice got status %q before the read, want delivered", su.Status)
		}
		for _, id := range su.MessageIDs {
			delivered[id] = true
		}
	}

	f := b.call("MESSAGES_READ", map[string]any{"chatId": chatID})
	if f.Type != "SERVER_ACK" {
		t.Fatalf("MESSAGES_READ: got %s %s", f.Type, f.Payload)
	}
	var read struct {
		Updated int `json:"updated"`
	}
	f.decode(t, &read)
	if read.Updated != 3 {
		t.Errorf("MESSAGES_READ updated %d, want 3", read.Updated)
	}
	a.event("MESSAGE_STATUS_UPDATE", func(f frame) bool {
		var su statusUpdate
		f.decode(t, &su)
		return su.Status == "read" && len(su.MessageIDs) == 3
	})

	// Bob leaves; the next message, after he read the chat, raises a new notification.
	b.ws.Close()
	waitOffline(t, sys, bob.ID)
	if f := a.call("SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": "otra vez"}); f.Type != "SERVER_ACK" {
		t.Fatalf("send after read: got %s %s", f.Type, f.Payload)
	}
	b2 := dial(t, sys, bob.Token, "bob again")
	b2.call("GET_NOTIFICATIONS", nil).decode(t, &bobList)
	if got := ofType(bobList, "new_message"); len(got) != 2 {
		t.Errorf("new_message notifications after reading and a new message: got %d, want 2", len(got))
	}
}
