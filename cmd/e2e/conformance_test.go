package e2e

// Conformance tests: docs/protocol.md §3–§7 rule by rule, with real WebSocket clients against the
// whole system. Each test names the rules it checks; the other e2e files cover the flows
// (send, deliver, read, presence, handshake, frame envelope, socket limits).

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"

	"github.com/charla/charla/cmd/internal/system/systemtest"
	"github.com/charla/charla/edge"
)

// startUnthrottled is startEdgeSystem without the per-connection rate limit, for tests that
// make many calls on one connection.
func startUnthrottled(t *testing.T) *systemtest.System {
	t.Helper()
	return startEdgeSystem(t, func(c *edge.Config) { c.Hub.RateLimit = 0 })
}

// sendAck is the SERVER_ACK of SEND_CHAT_MESSAGE.
type sendAck struct {
	MessageID       string `json:"messageId"`
	ChatID          string `json:"chatId"`
	Timestamp       int64  `json:"timestamp"`
	Status          string `json:"status"`
	ClientMessageID string `json:"clientMessageId"`
}

// mustSend sends a message and returns its ack, failing on anything else.
func mustSend(t *testing.T, c *wsClient, payload map[string]any) sendAck {
	t.Helper()
	f := c.call("SEND_CHAT_MESSAGE", payload)
	if f.Type != "SERVER_ACK" {
		t.Fatalf("%s: send %v: got %s %s, want SERVER_ACK", c.name, payload, f.Type, f.Payload)
	}
	var a sendAck
	f.decode(t, &a)
	return a
}

// wantCode checks that the reply to typ/payload is an error with code want (0: not an error).
func wantCode(t *testing.T, c *wsClient, want int, typ string, payload any) frame {
	t.Helper()
	f := c.call(typ, payload)
	if got := f.errorCode(t); got != want {
		t.Errorf("%s %v: got %s %s, want code %d", typ, payload, f.Type, f.Payload, want)
	}
	return f
}

// wantRaw is wantCode for a frame written byte for byte (numbers the JSON encoder would not
// produce).
func wantRaw(t *testing.T, c *wsClient, want int, typ, payload string) {
	t.Helper()
	pid := fmt.Sprintf("raw-%d", c.seq.Add(1))
	c.sendRaw(`{"type":"` + typ + `","pid":"` + pid + `","payload":` + payload + `}`)
	f := c.reply(pid)
	if got := f.errorCode(t); got != want {
		t.Errorf("%s %s: got %s %s, want code %d", typ, payload, f.Type, f.Payload, want)
	}
}

func idStr(id int64) string { return strconv.FormatInt(id, 10) }

type history struct {
	ChatID   string        `json:"chatId"`
	Messages []chatMessage `json:"messages"`
	HasMore  bool          `json:"hasMore"`
}

func ids(ms []chatMessage) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// TestIDForms: §3.9 "Ids, numbers, times, lists". User ids are JSON integers (no string, fraction,
// exponent, out of range); chat, message and notification ids are decimal strings of positive
// int64 without leading zeros. Every bad form is 400, never another id.
func TestIDForms(t *testing.T) {
	t.Parallel()
	sys := startUnthrottled(t)
	alice, bob := sys.NewUser(t, "ida"), sys.NewUser(t, "idb")
	chatID := idStr(sys.Contact(t, alice, bob))
	a := dial(t, sys, alice.Token, "a")

	for _, bad := range []string{`1e3`, `1E3`, `10e0`, `9223372036854775808`, `-1`, `0`, `1.0`, `"1"`, `true`, `[1]`, `{}`} {
		wantRaw(t, a, 400, "GET_USER_PROFILE", `{"userId":`+bad+`}`)
		wantRaw(t, a, 400, "SEND_CHAT_MESSAGE", `{"toUserId":`+bad+`,"text":"x"}`)
	}
	// The largest int64 is a valid id that nobody has.
	wantRaw(t, a, 404, "GET_USER_PROFILE", `{"userId":9223372036854775807}`)

	badIDs := []any{"0", "abc", "007", "-1", "+1", " 1", "1 ", "1.0", "1e3", "9223372036854775808", "", 1, json.Number("12")}
	for _, bad := range badIDs {
		wantCode(t, a, 400, "MESSAGES_READ", map[string]any{"chatId": bad})
		wantCode(t, a, 400, "GET_CHAT_MESSAGES", map[string]any{"chatId": bad})
		wantCode(t, a, 400, "TYPING_INDICATOR_ON", map[string]any{"chatId": bad})
		wantCode(t, a, 400, "TYPING_INDICATOR_OFF", map[string]any{"chatId": bad})
		wantCode(t, a, 400, "SEND_CHAT_MESSAGE", map[string]any{"chatId": bad, "text": "x"})
		wantCode(t, a, 400, "MARK_NOTIFICATION_READ", map[string]any{"notificationId": bad})
		wantCode(t, a, 400, "MESSAGES_READ", map[string]any{"chatId": chatID, "upToMessageId": bad})
		wantCode(t, a, 400, "GET_CHAT_MESSAGES", map[string]any{"chatId": chatID, "beforeId": bad})
		wantCode(t, a, 400, "GET_CHAT_MESSAGES", map[string]any{"chatId": chatID, "afterId": bad})
		wantCode(t, a, 400, "GET_NOTIFICATIONS", map[string]any{"before": bad})
	}
	// Required ids missing.
	for _, typ := range []string{"MESSAGES_READ", "GET_CHAT_MESSAGES", "TYPING_INDICATOR_ON", "TYPING_INDICATOR_OFF", "GET_USER_PROFILE"} {
		wantCode(t, a, 400, typ, map[string]any{})
	}
	wantCode(t, a, 400, "SEND_CHAT_MESSAGE", map[string]any{"text": "x"})
	// An optional field given as null is absent.
	if f := a.call("MESSAGES_READ", map[string]any{"chatId": chatID, "upToMessageId": nil}); f.Type != "SERVER_ACK" {
		t.Errorf("upToMessageId null: got %s %s, want SERVER_ACK", f.Type, f.Payload)
	}
}

// TestSendRules: §4.3 SEND_CHAT_MESSAGE: recipient rules, the order of checks (400/413 before 404
// before 403), chatId beside toUserId, trimming, fromUserId ignored, clientMessageId
// idempotency.
func TestSendRules(t *testing.T) {
	t.Parallel()
	sys := startUnthrottled(t)
	alice, bob, carol, dave := sys.NewUser(t, "sra"), sys.NewUser(t, "srb"), sys.NewUser(t, "src"), sys.NewUser(t, "srd")
	ab := idStr(sys.Contact(t, alice, bob))
	ac := idStr(sys.Contact(t, alice, carol))
	bc := idStr(sys.Contact(t, bob, carol)) // not alice's
	a := dial(t, sys, alice.Token, "a")
	b := dial(t, sys, bob.Token, "b")
	b.call("GET_CHAT_LIST", nil)

	long := strings.Repeat("ñ", 2001)
	wantCode(t, a, 400, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": alice.ID, "text": "me"})
	wantCode(t, a, 403, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": dave.ID, "text": "hi"})
	wantCode(t, a, 400, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": dave.ID, "text": " \n\t "})
	wantCode(t, a, 413, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": dave.ID, "text": long})
	wantCode(t, a, 400, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": dave.ID})
	wantCode(t, a, 400, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": dave.ID, "text": 5})
	wantCode(t, a, 400, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": dave.ID, "text": "x", "clientMessageId": strings.Repeat("k", 65)})
	wantCode(t, a, 400, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": dave.ID, "text": "x", "clientMessageId": ""})
	wantCode(t, a, 404, "SEND_CHAT_MESSAGE", map[string]any{"chatId": bc, "text": "hi"})
	wantCode(t, a, 404, "SEND_CHAT_MESSAGE", map[string]any{"chatId": "99999999", "text": "hi"})
	wantCode(t, a, 413, "SEND_CHAT_MESSAGE", map[string]any{"chatId": "99999999", "text": long})
	wantCode(t, a, 400, "SEND_CHAT_MESSAGE", map[string]any{"chatId": ab, "toUserId": carol.ID, "text": "hi"})
	wantCode(t, a, 400, "SEND_CHAT_MESSAGE", map[string]any{"chatId": ac, "toUserId": bob.ID, "text": "hi"})

	// Exactly 2000 code points after trimming is fine; 4-byte emoji count once.
	exact := strings.Repeat("😀", 2000)
	if got := mustSend(t, a, map[string]any{"toUserId": bob.ID, "text": "  " + exact + "\n"}); got.ChatID != ab {
		t.Errorf("2000 emoji: chat %s, want %s", got.ChatID, ab)
	}
	// chatId alone, and chatId with the matching toUserId; fromUserId is ignored.
	byChat := mustSend(t, a, map[string]any{"chatId": ab, "text": "by chat", "fromUserId": carol.ID})
	both := mustSend(t, a, map[string]any{"chatId": ab, "toUserId": bob.ID, "text": "both"})
	if byChat.ChatID != ab || both.ChatID != ab || byChat.Status != "sent_to_server" {
		t.Errorf("acks: got %+v and %+v, want chat %s", byChat, both, ab)
	}
	if byChat.ClientMessageID != "" {
		t.Errorf("ack without clientMessageId carries %q", byChat.ClientMessageID)
	}
	var m chatMessage
	b.event("NEW_CHAT_MESSAGE", func(f frame) bool { return strings.Contains(string(f.Payload), `"by chat"`) }).decode(t, &m)
	if m.FromUserID != alice.ID || m.ToUserID != bob.ID || m.ID != byChat.MessageID {
		t.Errorf("fromUserId in payload: got message %+v, want from %d to %d", m, alice.ID, bob.ID)
	}

	// clientMessageId: the same chat and trimmed text gives the original ack (also by chatId),
	// nothing new stored, the recipient sees it once; another text or chat is 409.
	first := mustSend(t, a, map[string]any{"toUserId": bob.ID, "text": "once", "clientMessageId": "cm-1"})
	isFirst := func(f frame) bool {
		var m chatMessage
		f.decode(t, &m)
		return m.ID == first.MessageID
	}
	b.event("NEW_CHAT_MESSAGE", isFirst)
	for _, p := range []map[string]any{
		{"toUserId": bob.ID, "text": " once ", "clientMessageId": "cm-1"},
		{"chatId": ab, "text": "once", "clientMessageId": "cm-1"},
	} {
		again := mustSend(t, a, p)
		if again.MessageID != first.MessageID || again.Timestamp != first.Timestamp || again.ChatID != ab || again.ClientMessageID != "cm-1" {
			t.Errorf("repeat %v: got %+v, want %+v", p, again, first)
		}
	}
	wantCode(t, a, 409, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": "twice", "clientMessageId": "cm-1"})
	wantCode(t, a, 409, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": carol.ID, "text": "once", "clientMessageId": "cm-1"})
	// Unique per sender: bob may use the same clientMessageId.
	if got := mustSend(t, b, map[string]any{"toUserId": alice.ID, "text": "mine", "clientMessageId": "cm-1"}); got.MessageID == first.MessageID {
		t.Error("bob's cm-1 got alice's message id")
	}
	if b.sawBefore("NEW_CHAT_MESSAGE", isFirst) {
		t.Error("the recipient saw a repeated clientMessageId twice")
	}
	var h history
	b.call("GET_CHAT_MESSAGES", map[string]any{"chatId": ab}).decode(t, &h)
	n := 0
	for _, m := range h.Messages {
		if m.Text == "once" {
			n++
			if m.ClientMessageID != "cm-1" {
				t.Errorf("history: clientMessageId %q, want cm-1", m.ClientMessageID)
			}
		}
	}
	if n != 1 {
		t.Errorf("history holds %d copies of the repeated message, want 1", n)
	}
	// §4.13: new_message notifications are for recipients with no connection at all.
	var nl notificationList
	b.call("GET_NOTIFICATIONS", nil).decode(t, &nl)
	if got := ofType(nl, "new_message"); len(got) != 0 {
		t.Errorf("a connected recipient got new_message notifications: %+v", got)
	}
}

// TestMessagesReadBounds: §4.4 MESSAGES_READ: only messages to the caller count, upToMessageId is an
// inclusive bound that need not exist, a repeat gives 0, someone else's chat is 404; the
// reader's other connections hear the read.
func TestMessagesReadBounds(t *testing.T) {
	t.Parallel()
	sys := startUnthrottled(t)
	alice, bob, carol := sys.NewUser(t, "mra"), sys.NewUser(t, "mrb"), sys.NewUser(t, "mrc")
	ab := idStr(sys.Contact(t, alice, bob))
	bc := idStr(sys.Contact(t, bob, carol))
	a := dial(t, sys, alice.Token, "a")
	b1, b2 := dial(t, sys, bob.Token, "b1"), dial(t, sys, bob.Token, "b2")
	b2.call("GET_CHAT_LIST", nil)
	var sent []sendAck
	for i := range 4 {
		sent = append(sent, mustSend(t, a, map[string]any{"toUserId": bob.ID, "text": fmt.Sprintf("r%d", i)}))
	}
	mustSend(t, b1, map[string]any{"toUserId": alice.ID, "text": "bob's own"})

	read := func(c *wsClient, payload map[string]any) int {
		t.Helper()
		f := c.call("MESSAGES_READ", payload)
		var r struct {
			ChatID  string `json:"chatId"`
			Updated *int   `json:"updated"`
		}
		f.decode(t, &r)
		if f.Type != "SERVER_ACK" || r.Updated == nil || r.ChatID != payload["chatId"] {
			t.Fatalf("MESSAGES_READ %v: got %s %s", payload, f.Type, f.Payload)
		}
		return *r.Updated
	}
	if got := read(b1, map[string]any{"chatId": ab, "upToMessageId": sent[1].MessageID}); got != 2 {
		t.Errorf("up to the 2nd (inclusive): updated %d, want 2", got)
	}
	b2.event("MESSAGE_STATUS_UPDATE", func(f frame) bool {
		var s statusUpdate
		f.decode(t, &s)
		return s.Status == "read" && hasID(s.MessageIDs, sent[1].MessageID)
	})
	if got := read(b1, map[string]any{"chatId": ab, "upToMessageId": sent[1].MessageID}); got != 0 {
		t.Errorf("repeat: updated %d, want 0", got)
	}
	id2, _ := strconv.ParseInt(sent[2].MessageID, 10, 64)
	if got := read(b1, map[string]any{"chatId": ab, "upToMessageId": idStr(id2 + 0)}); got != 1 {
		t.Errorf("up to the 3rd: updated %d, want 1", got)
	}
	// A bound far above every id; bob's own message to alice is not his to mark.
	if got := read(b1, map[string]any{"chatId": ab, "upToMessageId": "9223372036854775807"}); got != 1 {
		t.Errorf("up to a bound that does not exist: updated %d, want 1", got)
	}
	if got := read(b1, map[string]any{"chatId": ab}); got != 0 {
		t.Errorf("all, again: updated %d, want 0", got)
	}
	if got := read(a, map[string]any{"chatId": ab}); got != 1 {
		t.Errorf("alice reads bob's one message: updated %d, want 1", got)
	}
	wantCode(t, a, 404, "MESSAGES_READ", map[string]any{"chatId": bc})
	wantCode(t, a, 404, "MESSAGES_READ", map[string]any{"chatId": "99999999"})
	wantCode(t, a, 400, "MESSAGES_READ", map[string]any{"chatId": bc, "upToMessageId": "x"})
	var list struct {
		Chats []struct {
			ChatID      string `json:"chatId"`
			UnreadCount int    `json:"unreadCount"`
		} `json:"chats"`
	}
	b1.call("GET_CHAT_LIST", nil).decode(t, &list)
	for _, c := range list.Chats {
		if c.ChatID == ab && c.UnreadCount != 0 {
			t.Errorf("unreadCount after reading everything: %d, want 0", c.UnreadCount)
		}
	}
}

// TestHistoryPaging: §4.5 GET_CHAT_MESSAGES: oldest first, the three cursor modes, hasMore in
// the page's direction, cursors as bounds, both cursors 400, limit 1–200 defaulting to 50,
// [] for an empty chat, someone else's chat 404.
func TestHistoryPaging(t *testing.T) {
	t.Parallel()
	sys := startUnthrottled(t)
	alice, bob, carol, dave := sys.NewUser(t, "hpa"), sys.NewUser(t, "hpb"), sys.NewUser(t, "hpc"), sys.NewUser(t, "hpd")
	ab := idStr(sys.Contact(t, alice, bob))
	sys.Contact(t, alice, dave)
	bc := idStr(sys.Contact(t, bob, carol))
	a := dial(t, sys, alice.Token, "a")

	get := func(payload map[string]any) history {
		t.Helper()
		f := a.call("GET_CHAT_MESSAGES", payload)
		if f.Type != "CHAT_MESSAGES" {
			t.Fatalf("GET_CHAT_MESSAGES %v: got %s %s", payload, f.Type, f.Payload)
		}
		if !strings.Contains(string(f.Payload), `"messages":[`) {
			t.Errorf("GET_CHAT_MESSAGES %v: messages is not a list: %s", payload, f.Payload)
		}
		var h history
		f.decode(t, &h)
		if h.ChatID != ab {
			t.Errorf("chatId: got %q, want %s", h.ChatID, ab)
		}
		return h
	}
	if h := get(map[string]any{"chatId": ab}); len(h.Messages) != 0 || h.HasMore {
		t.Errorf("empty chat: got %+v", h)
	}
	const n = 55
	var all []string
	var elsewhere string // a message id between all[19] and all[20], of another chat
	for i := range n {
		if i == 20 {
			elsewhere = mustSend(t, a, map[string]any{"toUserId": dave.ID, "text": "elsewhere"}).MessageID
		}
		all = append(all, mustSend(t, a, map[string]any{"toUserId": bob.ID, "text": fmt.Sprintf("h%d", i)}).MessageID)
	}
	check := func(name string, payload map[string]any, want []string, wantMore bool) {
		t.Helper()
		h := get(payload)
		if got := ids(h.Messages); fmt.Sprint(got) != fmt.Sprint(want) || h.HasMore != wantMore {
			t.Errorf("%s: got %v hasMore %v, want %v hasMore %v", name, got, h.HasMore, want, wantMore)
		}
	}
	check("default limit 50", map[string]any{"chatId": ab}, all[n-50:], true)
	check("limit 200", map[string]any{"chatId": ab, "limit": 200}, all, false)
	check("limit exactly all", map[string]any{"chatId": ab, "limit": n}, all, false)
	check("limit 1", map[string]any{"chatId": ab, "limit": 1}, all[n-1:], true)
	check("beforeId", map[string]any{"chatId": ab, "beforeId": all[10], "limit": 3}, all[7:10], true)
	check("beforeId to the start", map[string]any{"chatId": ab, "beforeId": all[3], "limit": 3}, all[0:3], false)
	check("beforeId past the start", map[string]any{"chatId": ab, "beforeId": all[2], "limit": 5}, all[0:2], false)
	check("beforeId the first", map[string]any{"chatId": ab, "beforeId": all[0]}, []string{}, false)
	check("afterId", map[string]any{"chatId": ab, "afterId": all[10], "limit": 3}, all[11:14], true)
	check("afterId to the end", map[string]any{"chatId": ab, "afterId": all[n-4], "limit": 3}, all[n-3:], false)
	check("afterId the last", map[string]any{"chatId": ab, "afterId": all[n-1]}, []string{}, false)
	check("afterId another chat's id", map[string]any{"chatId": ab, "afterId": elsewhere, "limit": 2}, all[20:22], true)
	check("beforeId another chat's id", map[string]any{"chatId": ab, "beforeId": elsewhere, "limit": 2}, all[18:20], true)
	check("beforeId a bound above every id", map[string]any{"chatId": ab, "beforeId": "9223372036854775807", "limit": 2}, all[n-2:], true)
	check("null cursors", map[string]any{"chatId": ab, "beforeId": nil, "afterId": nil, "limit": nil}, all[n-50:], true)

	wantCode(t, a, 400, "GET_CHAT_MESSAGES", map[string]any{"chatId": ab, "beforeId": all[10], "afterId": all[1]})
	for _, limit := range []any{0, -1, 201, 1.5, "10"} {
		wantCode(t, a, 400, "GET_CHAT_MESSAGES", map[string]any{"chatId": ab, "limit": limit})
	}
	wantCode(t, a, 404, "GET_CHAT_MESSAGES", map[string]any{"chatId": bc})
	wantCode(t, a, 404, "GET_CHAT_MESSAGES", map[string]any{"chatId": "99999999"})
	wantCode(t, a, 400, "GET_CHAT_MESSAGES", map[string]any{"chatId": bc, "limit": 0})
}

type chatInfo struct {
	ChatID        string `json:"chatId"`
	OtherUserID   int64  `json:"otherUserId"`
	OtherUserName string `json:"otherUserName"`
	LastMessage   string `json:"lastMessage"`
	LastMessageTs int64  `json:"lastMessageTs"`
	UnreadCount   int    `json:"unreadCount"`
}

func chatList(t *testing.T, c *wsClient) (raw string, chats []chatInfo) {
	t.Helper()
	f := c.call("GET_CHAT_LIST", nil)
	if f.Type != "CHAT_LIST" {
		t.Fatalf("%s: GET_CHAT_LIST: got %s %s", c.name, f.Type, f.Payload)
	}
	var l struct {
		Chats []chatInfo `json:"chats"`
	}
	f.decode(t, &l)
	return string(f.Payload), l.Chats
}

// TestChatListOrder: §4.2 GET_CHAT_LIST: every accepted contact, newest lastMessageTs first,
// ties (chats without messages) by chatId descending, "" and 0 for a chat without messages,
// [] when none.
func TestChatListOrder(t *testing.T) {
	t.Parallel()
	sys := startUnthrottled(t)
	u := sys.NewUser(t, "clu")
	c := dial(t, sys, u.Token, "u")
	if raw, chats := chatList(t, c); len(chats) != 0 || !strings.Contains(raw, `"chats":[]`) {
		t.Errorf("no contacts: got %s, want chats []", raw)
	}
	var others []systemtest.User
	var chatIDs []string
	for i := range 4 {
		o := sys.NewUser(t, fmt.Sprintf("cl%d-", i))
		others = append(others, o)
		chatIDs = append(chatIDs, idStr(sys.Contact(t, u, o)))
	}
	// Messages in chats 1 then 0 (chat 0 newest), none in 2 and 3.
	// Chat 0 must be newer by timestamp, not only by id (same-millisecond sends are a tie, which
	// chatId would break the other way): send until its timestamp is later.
	older := mustSend(t, c, map[string]any{"toUserId": others[1].ID, "text": "older"})
	newest := mustSend(t, c, map[string]any{"toUserId": others[0].ID, "text": "newer"})
	for newest.Timestamp <= older.Timestamp {
		newest = mustSend(t, c, map[string]any{"toUserId": others[0].ID, "text": "newer"})
	}
	raw, chats := chatList(t, c)
	got := []string{}
	for _, ch := range chats {
		got = append(got, ch.ChatID)
	}
	want := []string{chatIDs[0], chatIDs[1], chatIDs[3], chatIDs[2]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("order: got %v, want %v (%s)", got, want, raw)
	}
	if len(chats) == 4 {
		if chats[0].LastMessage != "newer" || chats[0].LastMessageTs != newest.Timestamp || chats[0].OtherUserID != others[0].ID {
			t.Errorf("newest chat: got %+v", chats[0])
		}
		for _, ch := range chats[2:] {
			if ch.LastMessage != "" || ch.LastMessageTs != 0 || ch.UnreadCount != 0 {
				t.Errorf("chat without messages: got %+v, want \"\" and 0", ch)
			}
		}
	}
	if strings.Count(raw, `"lastMessage":""`) != 2 || strings.Count(raw, `"lastMessageTs":0`) != 2 {
		t.Errorf("chats without messages must carry lastMessage \"\" and lastMessageTs 0 explicitly: %s", raw)
	}
}

// TestRemovedContact: §4.7 "Removed contacts": the chat leaves CHAT_LIST, sending and
// typing become 403, the history stays readable and markable by both, a clientMessageId
// repeat is still acknowledged; adding the contact again restores the same chat and history.
func TestRemovedContact(t *testing.T) {
	t.Parallel()
	sys := startUnthrottled(t)
	alice, bob := sys.NewUser(t, "rca"), sys.NewUser(t, "rcb")
	chatID := sys.Contact(t, alice, bob)
	ab := idStr(chatID)
	a, b := dial(t, sys, alice.Token, "a"), dial(t, sys, bob.Token, "b")
	first := mustSend(t, a, map[string]any{"toUserId": bob.ID, "text": "before", "clientMessageId": "rc-1"})
	mustSend(t, b, map[string]any{"toUserId": alice.ID, "text": "reply"})

	if _, err := sys.Clients.Chat.RemoveContact(context.Background(), connect.NewRequest(&chatv1.RemoveContactRequest{UserId: bob.ID, OtherUserId: alice.ID})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wsClient{a, b} {
		if raw, chats := chatList(t, c); len(chats) != 0 || !strings.Contains(raw, `"chats":[]`) {
			t.Errorf("%s: chat list after removal: got %s, want []", c.name, raw)
		}
	}
	wantCode(t, a, 403, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": "after"})
	wantCode(t, a, 403, "SEND_CHAT_MESSAGE", map[string]any{"chatId": ab, "text": "after"})
	wantCode(t, b, 403, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": alice.ID, "text": "after"})
	wantCode(t, a, 403, "TYPING_INDICATOR_ON", map[string]any{"chatId": ab})
	wantCode(t, b, 403, "TYPING_INDICATOR_ON", map[string]any{"chatId": ab})
	// Input errors still come first.
	wantCode(t, a, 400, "SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": ""})
	// The repeat of a message sent while in contact is acknowledged as before.
	if again := mustSend(t, a, map[string]any{"toUserId": bob.ID, "text": "before", "clientMessageId": "rc-1"}); again.MessageID != first.MessageID || again.Timestamp != first.Timestamp {
		t.Errorf("repeat after removal: got %+v, want %+v", again, first)
	}
	for _, c := range []*wsClient{a, b} {
		var h history
		f := c.call("GET_CHAT_MESSAGES", map[string]any{"chatId": ab})
		f.decode(t, &h)
		if f.Type != "CHAT_MESSAGES" || len(h.Messages) != 2 {
			t.Errorf("%s: history after removal: got %s %s, want 2 messages", c.name, f.Type, f.Payload)
		}
		if r := c.call("MESSAGES_READ", map[string]any{"chatId": ab}); r.Type != "SERVER_ACK" || !strings.Contains(string(r.Payload), `"updated":1`) {
			t.Errorf("%s: MESSAGES_READ after removal: got %s %s, want updated 1", c.name, r.Type, r.Payload)
		}
	}
	// Removing again is idempotent; adding again restores the same chat.
	if _, err := sys.Clients.Chat.RemoveContact(context.Background(), connect.NewRequest(&chatv1.RemoveContactRequest{UserId: alice.ID, OtherUserId: bob.ID})); err != nil {
		t.Errorf("second RemoveContact: %v", err)
	}
	if again := sys.Contact(t, alice, bob); again != chatID {
		t.Errorf("re-added contact: chat %d, want %d", again, chatID)
	}
	_, chats := chatList(t, a)
	if len(chats) != 1 || chats[0].ChatID != ab || chats[0].LastMessage != "reply" {
		t.Errorf("chat list after re-adding: got %+v, want chat %s with its last message", chats, ab)
	}
	if got := mustSend(t, a, map[string]any{"toUserId": bob.ID, "text": "back"}); got.ChatID != ab {
		t.Errorf("send after re-adding: chat %s, want %s", got.ChatID, ab)
	}
	var h history
	b.call("GET_CHAT_MESSAGES", map[string]any{"chatId": ab}).decode(t, &h)
	if len(h.Messages) != 3 {
		t.Errorf("history after re-adding: %d messages, want 3", len(h.Messages))
	}
}

type typingEvent struct {
	ChatID      string `json:"chatId"`
	UserID      int64  `json:"userId"`
	IsTyping    bool   `json:"isTyping"`
	ExpiresInMs int64  `json:"expiresInMs"`
}

// TestTypingRelayRules: §5.4 TYPING_INDICATOR: ON relayed at most once per window (a repeat inside it is
// acknowledged, not relayed), OFF relayed only while a relayed ON is in force and resetting
// the window, a message ends typing, the last connection closing ends typing, the typer's
// other tab gets nothing.
func TestTypingRelayRules(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob := sys.NewUser(t, "tra"), sys.NewUser(t, "trb")
	ab := idStr(sys.Contact(t, alice, bob))
	a1, a2, b := dial(t, sys, alice.Token, "a1"), dial(t, sys, alice.Token, "a2"), dial(t, sys, bob.Token, "b")
	for _, c := range []*wsClient{a1, a2, b} {
		c.call("GET_CHAT_LIST", nil)
	}
	typing := func(on bool) func(frame) bool {
		return func(f frame) bool {
			var e typingEvent
			f.decode(t, &e)
			return e.ChatID == ab && e.UserID == alice.ID && e.IsTyping == on
		}
	}
	ack := func(c *wsClient, typ string) {
		t.Helper()
		if f := c.call(typ, map[string]any{"chatId": ab}); f.Type != "SERVER_ACK" || string(f.Payload) != "{}" {
			t.Fatalf("%s: got %s %s, want SERVER_ACK {}", typ, f.Type, f.Payload)
		}
	}

	// An OFF with no ON in force relays nothing.
	ack(a1, "TYPING_INDICATOR_OFF")
	if b.sawBefore("TYPING_INDICATOR", nil) {
		t.Error("an OFF without a relayed ON was relayed")
	}
	// ON, then ON again at once (inside the 3 s window), from either tab: one relay.
	ack(a1, "TYPING_INDICATOR_ON")
	var e typingEvent
	b.event("TYPING_INDICATOR", typing(true)).decode(t, &e)
	if e.ExpiresInMs != 6000 {
		t.Errorf("ON expiresInMs: got %d, want 6000 (the default)", e.ExpiresInMs)
	}
	ack(a1, "TYPING_INDICATOR_ON")
	ack(a2, "TYPING_INDICATOR_ON")
	if b.sawBefore("TYPING_INDICATOR", typing(true)) {
		t.Error("a second ON inside the window was relayed")
	}
	// OFF is relayed once and resets the window: the next ON is relayed at once.
	ack(a1, "TYPING_INDICATOR_OFF")
	b.event("TYPING_INDICATOR", typing(false)).decode(t, &e)
	if e.ExpiresInMs != 0 {
		t.Errorf("OFF expiresInMs: got %d, want 0", e.ExpiresInMs)
	}
	ack(a1, "TYPING_INDICATOR_OFF")
	if b.sawBefore("TYPING_INDICATOR", typing(false)) {
		t.Error("a second OFF was relayed")
	}
	ack(a2, "TYPING_INDICATOR_ON")
	b.event("TYPING_INDICATOR", typing(true))
	// Sending a message in the chat ends typing: the message and one OFF.
	mustSend(t, a1, map[string]any{"chatId": ab, "text": "done typing"})
	b.event("TYPING_INDICATOR", typing(false))
	b.event("NEW_CHAT_MESSAGE", nil)
	mustSend(t, a1, map[string]any{"chatId": ab, "text": "again"})
	b.event("NEW_CHAT_MESSAGE", func(f frame) bool { return strings.Contains(string(f.Payload), `"again"`) })
	if b.sawBefore("TYPING_INDICATOR", nil) {
		t.Error("a message without typing in force relayed an OFF")
	}
	// The typer's tabs never hear their own typing.
	for _, c := range []*wsClient{a1, a2} {
		if c.sawBefore("TYPING_INDICATOR", nil) {
			t.Errorf("%s received its own user's typing indicator", c.name)
		}
	}
	// Bob's typing reaches both of alice's tabs.
	ack(b, "TYPING_INDICATOR_ON")
	for _, c := range []*wsClient{a1, a2} {
		c.event("TYPING_INDICATOR", func(f frame) bool {
			var e typingEvent
			f.decode(t, &e)
			return e.UserID == bob.ID && e.IsTyping
		})
	}
	// Alice's last connection closing ends her typing (in another chat, whose window is fresh).
	carol := sys.NewUser(t, "trc")
	ac := idStr(sys.Contact(t, alice, carol))
	cc := dial(t, sys, carol.Token, "c")
	cc.call("GET_CHAT_LIST", nil)
	if f := a1.call("TYPING_INDICATOR_ON", map[string]any{"chatId": ac}); f.Type != "SERVER_ACK" {
		t.Fatalf("ON in %s: got %s %s", ac, f.Type, f.Payload)
	}
	inAC := func(on bool) func(frame) bool {
		return func(f frame) bool {
			var e typingEvent
			f.decode(t, &e)
			return e.ChatID == ac && e.UserID == alice.ID && e.IsTyping == on
		}
	}
	cc.event("TYPING_INDICATOR", inAC(true))
	a1.ws.Close()
	if cc.sawBefore("TYPING_INDICATOR", inAC(false)) {
		t.Error("typing ended while alice still had a connection")
	}
	a2.ws.Close()
	cc.event("TYPING_INDICATOR", inAC(false))
}

type profileData struct {
	ID          int64  `json:"id"`
	UserName    string `json:"userName"`
	FirstName   string `json:"firstName"`
	LastName    string `json:"lastName"`
	Email       string `json:"email"`
	Phone       string `json:"phone"`
	Picture     string `json:"picture"`
	Summary     string `json:"summary"`
	CountryID   int    `json:"countryId"`
	CountryName string `json:"countryName"`
	IsOnline    bool   `json:"isOnline"`
	LastSeen    int64  `json:"lastSeen"`
	Curriculum  struct {
		Education []map[string]any `json:"education"`
		Skills    []map[string]any `json:"skills"`
		Languages []map[string]any `json:"languages"`
		Projects  []map[string]any `json:"projects"`
	} `json:"curriculum"`
}

func profileOf(t *testing.T, f frame, typ string) profileData {
	t.Helper()
	if f.Type != typ {
		t.Fatalf("got %s %s, want %s", f.Type, f.Payload, typ)
	}
	var p profileData
	f.decode(t, &p)
	return p
}

// TestProfileVisibility: §4.9 GET_USER_PROFILE: everything for oneself and contacts; for anyone
// else email and phone "", isOnline false and lastSeen 0; unknown user 404.
func TestProfileVisibility(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob, dave := sys.NewUser(t, "pva"), sys.NewUser(t, "pvb"), sys.NewUser(t, "pvd")
	sys.Contact(t, alice, bob)
	b := dial(t, sys, bob.Token, "b")
	profileOf(t, b.call("UPDATE_MY_PROFILE", map[string]any{"phone": "+34 600 000 000"}), "MY_PROFILE_DATA")
	// Bob has gone offline once (lastSeen set) and is online again.
	b0 := dial(t, sys, bob.Token, "b0")
	b0.call("GET_CHAT_LIST", nil)
	b.ws.Close()
	b0.ws.Close()
	waitOffline(t, sys, bob.ID)
	b = dial(t, sys, bob.Token, "b again")
	b.call("GET_CHAT_LIST", nil)

	a, d := dial(t, sys, alice.Token, "a"), dial(t, sys, dave.Token, "d")
	contact := profileOf(t, a.call("GET_USER_PROFILE", map[string]any{"userId": bob.ID}), "USER_PROFILE_DATA")
	if contact.Email != bob.UserName+"@example.com" || contact.Phone != "+34 600 000 000" || !contact.IsOnline || contact.LastSeen == 0 || contact.UserName != bob.UserName {
		t.Errorf("contact's view: got %+v, want email, phone, online and lastSeen", contact)
	}
	stranger := profileOf(t, d.call("GET_USER_PROFILE", map[string]any{"userId": bob.ID}), "USER_PROFILE_DATA")
	if stranger.Email != "" || stranger.Phone != "" || stranger.IsOnline || stranger.LastSeen != 0 {
		t.Errorf("non-contact's view: got %+v, want email, phone \"\", offline, lastSeen 0", stranger)
	}
	if stranger.ID != bob.ID || stranger.UserName != bob.UserName || stranger.FirstName == "" {
		t.Errorf("non-contact's view: got %+v, want the public fields", stranger)
	}
	self := profileOf(t, b.call("GET_USER_PROFILE", map[string]any{"userId": bob.ID}), "USER_PROFILE_DATA")
	if self.Email == "" || self.Phone == "" || !self.IsOnline {
		t.Errorf("own profile via GET_USER_PROFILE: got %+v, want everything", self)
	}
	wantCode(t, a, 404, "GET_USER_PROFILE", map[string]any{"userId": 99999999})
}

// TestUpdateProfileRules: §4.10 UPDATE_MY_PROFILE and §6.4 ProfileData: null leaves a field, ""
// clears phone/picture/summary, countryId 0 clears, field limits, curriculum sections replaced
// whole with ids kept, unknown keys in items named, another user's item id 400, start after
// end 400, all or nothing.
func TestUpdateProfileRules(t *testing.T) {
	t.Parallel()
	sys := startUnthrottled(t)
	u, other := sys.NewUser(t, "upu"), sys.NewUser(t, "upo")
	c, oc := dial(t, sys, u.Token, "u"), dial(t, sys, other.Token, "o")
	update := func(payload map[string]any) profileData {
		t.Helper()
		return profileOf(t, c.call("UPDATE_MY_PROFILE", payload), "MY_PROFILE_DATA")
	}
	p := update(map[string]any{
		"firstName": "Ana", "lastName": "Pérez", "phone": "+34 (600) 11-22", "picture": "https://x.example/a.png",
		"summary": "hola", "countryId": 724,
		"curriculum": map[string]any{
			"skills":    []any{map[string]any{"name": "Go", "level": 5}, map[string]any{"name": "SQL", "level": 3}},
			"education": []any{map[string]any{"institution": "UPM", "startDate": "2010-09-01", "graduationDate": "2015-06-30", "countryId": 484}},
		},
	})
	if p.FirstName != "Ana" || p.Phone != "+34 (600) 11-22" || p.CountryID != 724 || p.CountryName != "Spain" || len(p.Curriculum.Skills) != 2 || len(p.Curriculum.Education) != 1 {
		t.Fatalf("first update: got %+v", p)
	}
	if p.Curriculum.Education[0]["countryName"] != "Mexico" {
		t.Errorf("education countryName: got %v, want Mexico", p.Curriculum.Education[0]["countryName"])
	}
	goID := p.Curriculum.Skills[0]["id"]
	if _, ok := goID.(string); !ok {
		t.Fatalf("skill id: got %v (%T), want a decimal string", goID, goID)
	}

	// null leaves everything as is; the profile is unchanged.
	same := update(map[string]any{"firstName": nil, "phone": nil, "countryId": nil, "curriculum": nil, "summary": nil})
	if fmt.Sprint(same) != fmt.Sprint(p) {
		t.Errorf("all null: got %+v, want unchanged %+v", same, p)
	}
	// "" clears phone, picture, summary; countryId 0 clears the country.
	cleared := update(map[string]any{"phone": "", "picture": "", "summary": "", "countryId": 0})
	if cleared.Phone != "" || cleared.Picture != "" || cleared.Summary != "" || cleared.CountryID != 0 || cleared.CountryName != "" || cleared.FirstName != "Ana" {
		t.Errorf("clearing: got %+v", cleared)
	}
	// A section given replaces that section whole; items echoed back (with countryName) keep
	// their id; sections not given stay.
	echoed := p.Curriculum.Skills[0]
	echoed["level"] = 4
	p2 := update(map[string]any{"curriculum": map[string]any{"skills": []any{echoed, map[string]any{"name": "Rust", "level": 2}},
		"education": p.Curriculum.Education}})
	if len(p2.Curriculum.Skills) != 2 || p2.Curriculum.Skills[0]["id"] != goID || p2.Curriculum.Skills[0]["level"] != float64(4) || p2.Curriculum.Skills[1]["name"] != "Rust" {
		t.Errorf("replace skills keeping Go's id: got %v", p2.Curriculum.Skills)
	}
	if len(p2.Curriculum.Education) != 1 || p2.Curriculum.Education[0]["id"] != p.Curriculum.Education[0]["id"] {
		t.Errorf("education echoed back: got %v", p2.Curriculum.Education)
	}
	p3 := update(map[string]any{"curriculum": map[string]any{"education": []any{}}})
	if len(p3.Curriculum.Education) != 0 || len(p3.Curriculum.Skills) != 2 {
		t.Errorf("[] empties only that section: got %+v", p3.Curriculum)
	}

	// Another user's item id → 400.
	op := profileOf(t, oc.call("UPDATE_MY_PROFILE", map[string]any{"curriculum": map[string]any{"skills": []any{map[string]any{"name": "Theirs"}}}}), "MY_PROFILE_DATA")
	theirs := op.Curriculum.Skills[0]["id"]

	before := profileOf(t, c.call("GET_MY_PROFILE", nil), "MY_PROFILE_DATA")
	for _, tt := range []struct {
		name    string
		payload map[string]any
		naming  string
	}{
		{"unknown key in an item", map[string]any{"summary": "changed", "curriculum": map[string]any{"skills": []any{map[string]any{"name": "Go", "rating": 5}}}}, "rating"},
		{"unknown section", map[string]any{"summary": "changed", "curriculum": map[string]any{"hobbies": []any{}}}, "hobbies"},
		{"another user's item id", map[string]any{"summary": "changed", "curriculum": map[string]any{"skills": []any{map[string]any{"id": theirs, "name": "Mine now"}}}}, "id"},
		{"another section's item id", map[string]any{"summary": "changed", "curriculum": map[string]any{"projects": []any{map[string]any{"id": goID, "name": "P"}}}}, "id"},
		{"start after end", map[string]any{"summary": "changed", "curriculum": map[string]any{"projects": []any{map[string]any{"name": "P", "startDate": "2020-02-01", "endDate": "2020-01-31"}}}}, "Date"},
		{"bad date", map[string]any{"summary": "changed", "curriculum": map[string]any{"projects": []any{map[string]any{"name": "P", "startDate": "2020-13-01"}}}}, "startDate"},
		{"missing required", map[string]any{"summary": "changed", "curriculum": map[string]any{"languages": []any{map[string]any{"name": "Español"}}}}, "proficiency"},
		{"bad proficiency", map[string]any{"summary": "changed", "curriculum": map[string]any{"languages": []any{map[string]any{"name": "Español", "proficiency": "fluent"}}}}, "proficiency"},
		{"skill level", map[string]any{"summary": "changed", "curriculum": map[string]any{"skills": []any{map[string]any{"name": "Go", "level": 6}}}}, "level"},
		{"skill level 0 given", map[string]any{"summary": "changed", "curriculum": map[string]any{"skills": []any{map[string]any{"name": "Go", "level": 0}}}}, "level"},
		{"51 items", map[string]any{"summary": "changed", "curriculum": map[string]any{"skills": manySkills(51)}}, "skills"},
		{"empty firstName", map[string]any{"summary": "changed", "firstName": ""}, "firstName"},
		{"long lastName", map[string]any{"summary": "changed", "lastName": strings.Repeat("x", 101)}, "lastName"},
		{"bad phone", map[string]any{"summary": "changed", "phone": "call me"}, "phone"},
		{"long phone", map[string]any{"summary": "changed", "phone": strings.Repeat("1", 33)}, "phone"},
		{"picture not http", map[string]any{"summary": "changed", "picture": "ftp://x.example/a.png"}, "picture"},
		{"long summary", map[string]any{"firstName": "Changed", "summary": strings.Repeat("x", 2001)}, "summary"},
		{"unknown country", map[string]any{"summary": "changed", "countryId": 999}, "countryId"},
		{"email", map[string]any{"summary": "changed", "email": "new@example.com"}, "email"},
		{"id", map[string]any{"summary": "changed", "id": u.ID}, "id"},
	} {
		f := c.call("UPDATE_MY_PROFILE", tt.payload)
		if f.errorCode(t) != 400 || !strings.Contains(string(f.Payload), tt.naming) {
			t.Errorf("%s: got %s %s, want 400 naming %s", tt.name, f.Type, f.Payload, tt.naming)
		}
	}
	after := profileOf(t, c.call("GET_MY_PROFILE", nil), "MY_PROFILE_DATA")
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a rejected update changed the profile:\n got %+v\nwant %+v", after, before)
	}
	if o := profileOf(t, oc.call("GET_MY_PROFILE", nil), "MY_PROFILE_DATA"); len(o.Curriculum.Skills) != 1 || o.Curriculum.Skills[0]["name"] != "Theirs" {
		t.Errorf("the other user's skills changed: %v", o.Curriculum.Skills)
	} else if lvl := o.Curriculum.Skills[0]["level"]; lvl != float64(0) {
		t.Errorf("a skill given without a level: got level %v, want 0", lvl)
	}
	// Limits at their edge are accepted.
	edgeOK := update(map[string]any{"firstName": strings.Repeat("é", 100), "summary": strings.Repeat("😀", 2000), "phone": strings.Repeat("1", 32),
		"curriculum": map[string]any{"skills": manySkills(50)}})
	if len(edgeOK.Curriculum.Skills) != 50 {
		t.Errorf("50 skills: got %d", len(edgeOK.Curriculum.Skills))
	}
}

func manySkills(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"name": fmt.Sprintf("skill %d", i)}
	}
	return out
}

// TestNotificationRules: §4.11–§4.13 notifications: newest first, before as an exclusive bound (also
// someone else's id), limit 1–200, unreadCount whatever the page, MARK_NOTIFICATION_READ with
// exactly one selector, another user's id 404 with nothing changed, updated counts rows.
func TestNotificationRules(t *testing.T) {
	t.Parallel()
	sys := startUnthrottled(t)
	u, other := sys.NewUser(t, "nru"), sys.NewUser(t, "nro")
	create := func(user int64, title string) string {
		t.Helper()
		res, err := sys.Clients.Notify.CreateNotification(context.Background(), connect.NewRequest(&notifyv1.CreateNotificationRequest{
			UserId: user, Type: "system", Title: title, Message: "m",
		}))
		if err != nil {
			t.Fatal(err)
		}
		return idStr(res.Msg.GetNotification().GetId())
	}
	var mine []string
	for i := range 5 {
		mine = append(mine, create(u.ID, fmt.Sprintf("n%d", i)))
	}
	theirs := create(other.ID, "theirs")
	c, oc := dial(t, sys, u.Token, "u"), dial(t, sys, other.Token, "o")

	list := func(c *wsClient, payload map[string]any) (string, notificationList) {
		t.Helper()
		f := c.call("GET_NOTIFICATIONS", payload)
		if f.Type != "NOTIFICATION_LIST" {
			t.Fatalf("GET_NOTIFICATIONS %v: got %s %s", payload, f.Type, f.Payload)
		}
		var l notificationList
		f.decode(t, &l)
		return string(f.Payload), l
	}
	nids := func(l notificationList) []string {
		out := []string{}
		for _, n := range l.Notifications {
			out = append(out, n.ID)
		}
		return out
	}
	_, l := list(c, nil)
	if want := []string{mine[4], mine[3], mine[2], mine[1], mine[0]}; fmt.Sprint(nids(l)) != fmt.Sprint(want) || l.UnreadCount != 5 {
		t.Errorf("all: got %v unread %d, want %v unread 5", nids(l), l.UnreadCount, want)
	}
	for _, n := range l.Notifications {
		if n.Payload == nil {
			t.Errorf("notification %s: payload absent or null, want {}", n.ID)
		}
	}
	_, l = list(c, map[string]any{"limit": 2, "before": mine[3]})
	if want := []string{mine[2], mine[1]}; fmt.Sprint(nids(l)) != fmt.Sprint(want) || l.UnreadCount != 5 {
		t.Errorf("limit 2 before the 4th: got %v unread %d, want %v unread 5", nids(l), l.UnreadCount, want)
	}
	// Someone else's id is a bound too (theirs was created after all of mine).
	_, l = list(c, map[string]any{"limit": 1, "before": theirs})
	if want := []string{mine[4]}; fmt.Sprint(nids(l)) != fmt.Sprint(want) {
		t.Errorf("before another user's id: got %v, want %v", nids(l), want)
	}
	raw, l := list(c, map[string]any{"before": mine[0]})
	if len(l.Notifications) != 0 || !strings.Contains(raw, `"notifications":[]`) || l.UnreadCount != 5 {
		t.Errorf("before the first: got %s, want [] and unreadCount 5", raw)
	}
	for _, limit := range []any{0, -1, 201, 2.5, "5"} {
		wantCode(t, c, 400, "GET_NOTIFICATIONS", map[string]any{"limit": limit})
	}
	wantCode(t, c, 400, "GET_NOTIFICATIONS", map[string]any{"unreadOnly": "yes"})
	if _, l := list(c, map[string]any{"limit": 200}); len(l.Notifications) != 5 {
		t.Errorf("limit 200: got %d", len(l.Notifications))
	}

	// MARK_NOTIFICATION_READ selectors.
	wantCode(t, c, 400, "MARK_NOTIFICATION_READ", map[string]any{"notificationId": mine[0], "all": true})
	wantCode(t, c, 400, "MARK_NOTIFICATION_READ", map[string]any{"all": false})
	wantCode(t, c, 400, "MARK_NOTIFICATION_READ", map[string]any{"all": "true"})
	wantCode(t, c, 404, "MARK_NOTIFICATION_READ", map[string]any{"notificationId": theirs})
	if _, ol := list(oc, nil); ol.UnreadCount != 1 || len(ol.Notifications) != 1 || ol.Notifications[0].ID != theirs {
		t.Errorf("the owner after another user tried to mark it: got %+v, want it unread", ol)
	}
	if _, l := list(c, nil); l.UnreadCount != 5 {
		t.Errorf("unread after a 404: got %d, want 5", l.UnreadCount)
	}
	updated := func(payload map[string]any) string {
		t.Helper()
		f := c.call("MARK_NOTIFICATION_READ", payload)
		if f.Type != "SERVER_ACK" {
			t.Fatalf("MARK_NOTIFICATION_READ %v: got %s %s", payload, f.Type, f.Payload)
		}
		return string(f.Payload)
	}
	if got := updated(map[string]any{"notificationId": mine[1]}); got != `{"updated":1}` {
		t.Errorf("mark one: got %s, want {\"updated\":1}", got)
	}
	if got := updated(map[string]any{"notificationId": mine[1]}); got != `{"updated":0}` {
		t.Errorf("mark one again: got %s, want {\"updated\":0}", got)
	}
	_, l = list(c, map[string]any{"unreadOnly": true, "limit": 2})
	if want := []string{mine[4], mine[3]}; fmt.Sprint(nids(l)) != fmt.Sprint(want) || l.UnreadCount != 4 {
		t.Errorf("unreadOnly limit 2: got %v unread %d, want %v unread 4", nids(l), l.UnreadCount, want)
	}
	_, l = list(c, map[string]any{"unreadOnly": true, "before": mine[2]})
	if want := []string{mine[0]}; fmt.Sprint(nids(l)) != fmt.Sprint(want) {
		t.Errorf("unreadOnly before the 3rd: got %v, want %v (the 2nd is read)", nids(l), want)
	}
	if got := updated(map[string]any{"all": true}); got != `{"updated":4}` {
		t.Errorf("mark all: got %s, want {\"updated\":4}", got)
	}
	if got := updated(map[string]any{"all": true}); got != `{"updated":0}` {
		t.Errorf("mark all again: got %s, want {\"updated\":0}", got)
	}
	if _, ol := list(oc, nil); ol.UnreadCount != 1 {
		t.Errorf("another user's mark-all changed the owner's unread: got %d, want 1", ol.UnreadCount)
	}
}

// TestEventPIDsFresh: §3.2 every server-initiated event carries a fresh server-generated pid,
// one per event per connection, never a client's pid.
func TestEventPIDsFresh(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob := sys.NewUser(t, "epa"), sys.NewUser(t, "epb")
	ab := idStr(sys.Contact(t, alice, bob))
	a1, a2, b := dial(t, sys, alice.Token, "a1"), dial(t, sys, alice.Token, "a2"), dial(t, sys, bob.Token, "b")
	for _, c := range []*wsClient{a1, a2, b} {
		c.call("GET_CHAT_LIST", nil)
	}
	var clientPIDs []string
	for i := range 3 {
		clientPIDs = append(clientPIDs, a1.send("SEND_CHAT_MESSAGE", map[string]any{"chatId": ab, "text": fmt.Sprintf("p%d", i)}))
	}
	clientPIDs = append(clientPIDs, a1.send("TYPING_INDICATOR_ON", map[string]any{"chatId": ab}))
	seen := map[string]string{}
	collect := func(c *wsClient, typ string, n int) {
		t.Helper()
		for range n {
			f := c.event(typ, nil)
			if f.PID == "" {
				t.Errorf("%s: %s without a pid", c.name, typ)
			}
			for _, p := range clientPIDs {
				if f.PID == p {
					t.Errorf("%s: %s carries the client's pid %q", c.name, typ, p)
				}
			}
			key := c.name + "/" + f.PID
			if prev, ok := seen[key]; ok {
				t.Errorf("%s: pid %q on %s and again on %s", c.name, f.PID, prev, typ)
			}
			seen[key] = typ
		}
	}
	collect(b, "NEW_CHAT_MESSAGE", 3)
	collect(b, "TYPING_INDICATOR", 1)
	collect(a2, "NEW_CHAT_MESSAGE", 3)
	// Bob reads: the read status reaches both of alice's tabs.
	b.call("MESSAGES_READ", map[string]any{"chatId": ab})
	collect(a2, "MESSAGE_STATUS_UPDATE", 1)
}

// TestStatusForwardOnly: §5.3 statuses move only forward and may skip delivered. A message to
// an offline user is not delivered by a later connection or GET_CHAT_LIST alone; a read
// without a fetch gives the sender only read; a fetch after the read announces nothing.
func TestStatusForwardOnly(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob := sys.NewUser(t, "sfa"), sys.NewUser(t, "sfb")
	ab := idStr(sys.Contact(t, alice, bob))
	a := dial(t, sys, alice.Token, "a")
	m := mustSend(t, a, map[string]any{"toUserId": bob.ID, "text": "while you were away"})
	about := func(status string) func(frame) bool {
		return func(f frame) bool {
			var s statusUpdate
			f.decode(t, &s)
			return s.Status == status && hasID(s.MessageIDs, m.MessageID) && s.ChatID == ab
		}
	}
	b := dial(t, sys, bob.Token, "b")
	_, chats := chatList(t, b)
	if len(chats) != 1 || chats[0].UnreadCount != 1 || chats[0].LastMessage != "while you were away" {
		t.Errorf("bob's chat list: got %+v, want 1 unread", chats)
	}
	if a.sawBefore("MESSAGE_STATUS_UPDATE", nil) {
		t.Error("connecting and GET_CHAT_LIST reported the message delivered")
	}
	if f := b.call("MESSAGES_READ", map[string]any{"chatId": ab}); !strings.Contains(string(f.Payload), `"updated":1`) {
		t.Fatalf("MESSAGES_READ: got %s %s, want updated 1", f.Type, f.Payload)
	}
	a.event("MESSAGE_STATUS_UPDATE", about("read"))
	var h history
	b.call("GET_CHAT_MESSAGES", map[string]any{"chatId": ab}).decode(t, &h)
	if len(h.Messages) != 1 || h.Messages[0].Status != "read" {
		t.Errorf("history after the read: got %+v, want the message read", h.Messages)
	}
	if a.sawBefore("MESSAGE_STATUS_UPDATE", about("delivered")) {
		t.Error("a read message went back to delivered")
	}
	var ah history
	a.call("GET_CHAT_MESSAGES", map[string]any{"chatId": ab}).decode(t, &ah)
	if len(ah.Messages) != 1 || ah.Messages[0].Status != "read" {
		t.Errorf("sender's history: got %+v, want read", ah.Messages)
	}
}

// TestUnknownKeysIgnored: §3.3 unknown payload keys are ignored (forward compatibility), and a
// payload on a type that takes none is ignored, outside UPDATE_MY_PROFILE.
func TestUnknownKeysIgnored(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob := sys.NewUser(t, "uka"), sys.NewUser(t, "ukb")
	ab := idStr(sys.Contact(t, alice, bob))
	a := dial(t, sys, alice.Token, "a")
	extra := map[string]any{"future": map[string]any{"x": 1}, "seq": 7}
	with := func(p map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range extra {
			out[k] = v
		}
		for k, v := range p {
			out[k] = v
		}
		return out
	}
	for _, tt := range []struct {
		typ     string
		payload map[string]any
		want    string
	}{
		{"GET_CHAT_LIST", with(nil), "CHAT_LIST"},
		{"GET_MY_PROFILE", with(nil), "MY_PROFILE_DATA"},
		{"SEND_CHAT_MESSAGE", with(map[string]any{"toUserId": bob.ID, "text": "x"}), "SERVER_ACK"},
		{"MESSAGES_READ", with(map[string]any{"chatId": ab}), "SERVER_ACK"},
		{"TYPING_INDICATOR_ON", with(map[string]any{"chatId": ab}), "SERVER_ACK"},
		{"TYPING_INDICATOR_OFF", with(map[string]any{"chatId": ab}), "SERVER_ACK"},
		{"GET_USER_PROFILE", with(map[string]any{"userId": bob.ID}), "USER_PROFILE_DATA"},
		{"GET_NOTIFICATIONS", with(nil), "NOTIFICATION_LIST"},
		{"MARK_NOTIFICATION_READ", with(map[string]any{"all": true}), "SERVER_ACK"},
		{"GET_CHAT_MESSAGES", with(map[string]any{"chatId": ab}), "CHAT_MESSAGES"},
	} {
		if f := a.call(tt.typ, tt.payload); f.Type != tt.want {
			t.Errorf("%s with unknown keys: got %s %s, want %s", tt.typ, f.Type, f.Payload, tt.want)
		}
	}
	for _, raw := range []string{`[1,2]`, `"x"`, `3`, `true`} {
		c := a
		pid := fmt.Sprintf("np-%d", c.seq.Add(1))
		c.sendRaw(`{"type":"GET_MY_PROFILE","pid":"` + pid + `","payload":` + raw + `}`)
		if f := c.reply(pid); f.Type != "MY_PROFILE_DATA" {
			t.Errorf("GET_MY_PROFILE with payload %s: got %s %s, want MY_PROFILE_DATA", raw, f.Type, f.Payload)
		}
	}
}

// TestRPCContract: §7.3's rules for the internal calls the e2e flows do not exercise, through
// the same Connect clients the edge uses.
func TestRPCContract(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	ctx := context.Background()
	a, b := sys.NewUser(t, "rpa"), sys.NewUser(t, "rpb")
	code := func(err error) connect.Code {
		if err == nil {
			return 0
		}
		return connect.CodeOf(err)
	}
	check := func(name string, err error, want connect.Code) {
		t.Helper()
		if got := code(err); got != want {
			t.Errorf("%s: got %v (%v), want %v", name, got, err, want)
		}
	}

	// CreateUser: upper case folded, duplicates (email ignoring case) already_exists.
	res, err := sys.Clients.Profile.CreateUser(ctx, connect.NewRequest(&profilev1.CreateUserRequest{UserName: "Mixed.Case_1", FirstName: "M", LastName: "C", Email: "Mixed@Example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Msg.GetUser().GetUserName(); got != "mixed.case_1" {
		t.Errorf("userName: got %q, want folded to lower case", got)
	}
	_, err = sys.Clients.Profile.CreateUser(ctx, connect.NewRequest(&profilev1.CreateUserRequest{UserName: "MIXED.case_1", FirstName: "M", LastName: "C", Email: "other@example.com"}))
	check("duplicate userName", err, connect.CodeAlreadyExists)
	_, err = sys.Clients.Profile.CreateUser(ctx, connect.NewRequest(&profilev1.CreateUserRequest{UserName: "another", FirstName: "M", LastName: "C", Email: "mixed@example.COM"}))
	check("duplicate email ignoring case", err, connect.CodeAlreadyExists)
	for name, req := range map[string]*profilev1.CreateUserRequest{
		"short userName":   {UserName: "ab", FirstName: "M", LastName: "C", Email: "s@example.com"},
		"userName symbols": {UserName: "a b!", FirstName: "M", LastName: "C", Email: "t@example.com"},
		"email two @":      {UserName: "okname", FirstName: "M", LastName: "C", Email: "a@b@example.com"},
		"no firstName":     {UserName: "okname2", LastName: "C", Email: "u@example.com"},
	} {
		_, err := sys.Clients.Profile.CreateUser(ctx, connect.NewRequest(req))
		check(name, err, connect.CodeInvalidArgument)
	}

	// CreateSession: ttl 1 s to 365 days; unknown user not_found. RevokeSession is idempotent.
	_, err = sys.Clients.Profile.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{UserId: a.ID, TtlSeconds: 366 * 24 * 3600}))
	check("ttl over a year", err, connect.CodeInvalidArgument)
	_, err = sys.Clients.Profile.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{UserId: a.ID, TtlSeconds: -1}))
	check("negative ttl", err, connect.CodeInvalidArgument)
	_, err = sys.Clients.Profile.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{UserId: 99999999}))
	check("session for an unknown user", err, connect.CodeNotFound)
	_, err = sys.Clients.Profile.RevokeSession(ctx, connect.NewRequest(&profilev1.RevokeSessionRequest{Token: "never-issued"}))
	check("revoke an unknown token", err, 0)

	// CreateContact: either order gives the same chat; oneself invalid; unknown not_found.
	first := sys.Contact(t, a, b)
	if again := sys.Contact(t, b, a); again != first {
		t.Errorf("CreateContact in the other order: chat %d, want %d", again, first)
	}
	_, err = sys.Clients.Chat.CreateContact(ctx, connect.NewRequest(&chatv1.CreateContactRequest{UserId: a.ID, OtherUserId: a.ID}))
	check("contact with oneself", err, connect.CodeInvalidArgument)
	_, err = sys.Clients.Chat.CreateContact(ctx, connect.NewRequest(&chatv1.CreateContactRequest{UserId: a.ID, OtherUserId: 99999999}))
	check("contact with an unknown user", err, connect.CodeNotFound)
	c := sys.NewUser(t, "rpc")
	_, err = sys.Clients.Chat.RemoveContact(ctx, connect.NewRequest(&chatv1.RemoveContactRequest{UserId: a.ID, OtherUserId: c.ID}))
	check("remove a pair not in contact", err, 0)

	// CreateNotification for an unknown user: not_found.
	_, err = sys.Clients.Notify.CreateNotification(ctx, connect.NewRequest(&notifyv1.CreateNotificationRequest{UserId: 99999999, Type: "system", Title: "t", Message: "m"}))
	check("notification for an unknown user", err, connect.CodeNotFound)

	// GetPresence: one entry per asked id, in the order asked; never-seen ids offline, 0.
	dial(t, sys, b.Token, "b").call("GET_CHAT_LIST", nil)
	asked := []int64{99999999, b.ID, a.ID}
	pres, err := sys.Clients.Presence.GetPresence(ctx, connect.NewRequest(&presencev1.GetPresenceRequest{UserIds: asked}))
	if err != nil {
		t.Fatal(err)
	}
	ps := pres.Msg.GetPresences()
	if len(ps) != len(asked) {
		t.Fatalf("GetPresence: %d entries, want %d", len(ps), len(asked))
	}
	for i, p := range ps {
		if p.GetUserId() != asked[i] {
			t.Errorf("GetPresence[%d]: user %d, want %d (the order asked)", i, p.GetUserId(), asked[i])
		}
	}
	if ps[0].GetIsOnline() || ps[0].GetLastSeen() != 0 || !ps[1].GetIsOnline() || ps[2].GetIsOnline() {
		t.Errorf("GetPresence: got %v, want unknown offline/0, b online, a offline", ps)
	}
}
