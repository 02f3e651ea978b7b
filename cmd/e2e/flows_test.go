package e2e

import (
	"context"
	"strconv"
	"testing"

	"connectrpc.com/connect"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

type chatMessage struct {
	ID              string `json:"id"`
	ChatID          string `json:"chatId"`
	FromUserID      int64  `json:"fromUserId"`
	ToUserID        int64  `json:"toUserId"`
	Text            string `json:"text"`
	Timestamp       int64  `json:"timestamp"`
	Status          string `json:"status"`
	ClientMessageID string `json:"clientMessageId"`
	FromUsername    string `json:"fromUsername"`
}

type statusUpdate struct {
	ChatID     string   `json:"chatId"`
	MessageIDs []string `json:"messageIds"`
	Status     string   `json:"status"`
}

func hasID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestSendDeliverRead: alice sends from one of two tabs; bob receives NEW_CHAT_MESSAGE, so
// does alice's other tab but not the sending one; alice sees delivered, then read.
func TestSendDeliverRead(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob := sys.NewUser(t, "sa"), sys.NewUser(t, "sb")
	chatID := strconv.FormatInt(sys.Contact(t, alice, bob), 10)
	a1 := dial(t, sys, alice.Token, "a1")
	a2 := dial(t, sys, alice.Token, "a2")
	b1 := dial(t, sys, bob.Token, "b1")
	for _, c := range []*wsClient{a1, a2, b1} {
		c.call("GET_CHAT_LIST", nil) // connected and routed
	}

	ack := a1.call("SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": "  hola 👋 ", "clientMessageId": "m-1"})
	if ack.Type != "SERVER_ACK" {
		t.Fatalf("send: got %s %s, want SERVER_ACK", ack.Type, ack.Payload)
	}
	var a struct {
		MessageID, ChatID, Status, ClientMessageID string
		Timestamp                                  int64
	}
	ack.decode(t, &a)
	if a.ChatID != chatID || a.Status != "sent_to_server" || a.ClientMessageID != "m-1" || a.Timestamp == 0 {
		t.Errorf("ack: got %+v, want chat %s, sent_to_server, m-1", a, chatID)
	}
	if _, err := strconv.ParseInt(a.MessageID, 10, 64); err != nil {
		t.Errorf("messageId %q is not a decimal string", a.MessageID)
	}

	isIt := func(f frame) bool {
		var m chatMessage
		f.decode(t, &m)
		return m.ID == a.MessageID
	}
	for _, c := range []*wsClient{b1, a2} {
		f := c.event("NEW_CHAT_MESSAGE", isIt)
		var m chatMessage
		f.decode(t, &m)
		want := chatMessage{ID: a.MessageID, ChatID: chatID, FromUserID: alice.ID, ToUserID: bob.ID, Text: "hola 👋", Timestamp: a.Timestamp,
			Status: "sent_to_server", ClientMessageID: "m-1", FromUsername: alice.UserName}
		if m != want {
			t.Errorf("%s: NEW_CHAT_MESSAGE: got %+v, want %+v", c.name, m, want)
		}
		if f.PID == "" || f.PID == ack.PID {
			t.Errorf("%s: event pid %q, want a fresh server pid", c.name, f.PID)
		}
	}
	// Delivered to bob's socket: alice's tabs hear it.
	for _, c := range []*wsClient{a1, a2} {
		c.event("MESSAGE_STATUS_UPDATE", func(f frame) bool {
			var s statusUpdate
			f.decode(t, &s)
			return s.Status == "delivered" && hasID(s.MessageIDs, a.MessageID) && s.ChatID == chatID
		})
	}
	// The sending tab never got its own message back.
	if a1.sawBefore("NEW_CHAT_MESSAGE", isIt) {
		t.Error("the sending connection received its own NEW_CHAT_MESSAGE")
	}

	// Bob reads: updated 1, alice's tabs see read; a repeat updates nothing.
	r := b1.call("MESSAGES_READ", map[string]any{"chatId": chatID})
	var ra struct {
		ChatID  string
		Updated int
	}
	r.decode(t, &ra)
	if r.Type != "SERVER_ACK" || ra.ChatID != chatID || ra.Updated != 1 {
		t.Errorf("MESSAGES_READ: got %s %s, want SERVER_ACK updated 1", r.Type, r.Payload)
	}
	a1.event("MESSAGE_STATUS_UPDATE", func(f frame) bool {
		var s statusUpdate
		f.decode(t, &s)
		return s.Status == "read" && hasID(s.MessageIDs, a.MessageID)
	})
	r = b1.call("MESSAGES_READ", map[string]any{"chatId": chatID})
	r.decode(t, &ra)
	if ra.Updated != 0 {
		t.Errorf("repeat MESSAGES_READ: got updated %d, want 0", ra.Updated)
	}

	// History has it, read, oldest first.
	h := b1.call("GET_CHAT_MESSAGES", map[string]any{"chatId": chatID})
	var hist struct {
		ChatID   string
		Messages []chatMessage
		HasMore  bool
	}
	h.decode(t, &hist)
	if h.Type != "CHAT_MESSAGES" || len(hist.Messages) != 1 || hist.Messages[0].Status != "read" || hist.HasMore {
		t.Errorf("history: got %s %s", h.Type, h.Payload)
	}
	// An idempotent repeat is acknowledged with the same id and not delivered again.
	again := a1.call("SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": "hola 👋", "clientMessageId": "m-1"})
	var a2ack struct{ MessageID string }
	again.decode(t, &a2ack)
	if again.Type != "SERVER_ACK" || a2ack.MessageID != a.MessageID {
		t.Errorf("repeat send: got %s %s, want the original messageId %s", again.Type, again.Payload, a.MessageID)
	}
	conflict := a1.call("SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": "other", "clientMessageId": "m-1"})
	if code := conflict.errorCode(t); code != 409 {
		t.Errorf("reused clientMessageId: got %d, want 409", code)
	}
	if b1.sawBefore("NEW_CHAT_MESSAGE", isIt) {
		t.Error("the recipient saw the repeated message twice")
	}
}

type presenceEvent struct {
	UserID   int64  `json:"userId"`
	Event    string `json:"event"`
	LastSeen *int64 `json:"lastSeen"`
}

// TestPresence: contacts hear online and offline transitions; a second tab announces
// nothing; a non-contact hears nothing.
func TestPresence(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob, dave := sys.NewUser(t, "pa"), sys.NewUser(t, "pb"), sys.NewUser(t, "pd")
	sys.Contact(t, alice, bob)
	a := dial(t, sys, alice.Token, "a")
	d := dial(t, sys, dave.Token, "d")
	a.call("GET_CHAT_LIST", nil)
	d.call("GET_CHAT_LIST", nil)

	about := func(event string) func(frame) bool {
		return func(f frame) bool {
			var p presenceEvent
			f.decode(t, &p)
			return p.UserID == bob.ID && p.Event == event
		}
	}
	b1 := dial(t, sys, bob.Token, "b1")
	on := a.event("PRESENCE_EVENT", about("user_online"))
	var p presenceEvent
	on.decode(t, &p)
	if p.LastSeen != nil {
		t.Errorf("user_online carries lastSeen %d; want none", *p.LastSeen)
	}
	b2 := dial(t, sys, bob.Token, "b2")
	b2.call("GET_CHAT_LIST", nil)
	b2.ws.Close()
	if a.sawBefore("PRESENCE_EVENT", about("user_online")) {
		t.Error("a second tab announced user_online again")
	}
	b1.ws.Close()
	off := a.event("PRESENCE_EVENT", about("user_offline"))
	off.decode(t, &p)
	if p.LastSeen == nil || *p.LastSeen <= 0 {
		t.Errorf("user_offline: got %s, want a lastSeen", off.Payload)
	}
	if d.sawBefore("PRESENCE_EVENT", nil) {
		t.Error("a non-contact received a PRESENCE_EVENT")
	}
	// The profile agrees: offline with the same lastSeen.
	prof := a.call("GET_USER_PROFILE", map[string]any{"userId": bob.ID})
	var pd struct {
		IsOnline bool
		LastSeen int64
	}
	prof.decode(t, &pd)
	if pd.IsOnline || pd.LastSeen != *p.LastSeen {
		t.Errorf("profile: got online %v lastSeen %d, want offline and %d", pd.IsOnline, pd.LastSeen, *p.LastSeen)
	}
}

// TestRevokeCloses4001: revoking a session closes its connections with 4001 and leaves the
// user's other sessions alone.
func TestRevokeCloses4001(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	u := sys.NewUser(t, "rv")
	other, err := sys.Clients.Profile.CreateSession(context.Background(), connect.NewRequest(&profilev1.CreateSessionRequest{UserId: u.ID}))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, sys, u.Token, "rv")
	keep := dial(t, sys, other.Msg.GetToken(), "keep")
	c.call("GET_CHAT_LIST", nil)
	keep.call("GET_CHAT_LIST", nil)
	if _, err := sys.Clients.Profile.RevokeSession(context.Background(), connect.NewRequest(&profilev1.RevokeSessionRequest{Token: u.Token})); err != nil {
		t.Fatal(err)
	}
	code, reason := c.closeCode()
	if code != 4001 || reason != "session revoked" {
		t.Errorf("close: got %d %q, want 4001 \"session revoked\"", code, reason)
	}
	if f := keep.call("GET_CHAT_LIST", nil); f.Type != "CHAT_LIST" {
		t.Errorf("other session: got %s, want CHAT_LIST", f.Type)
	}
}
