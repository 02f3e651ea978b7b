package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"

	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// seqOf returns a frame's seq, failing when it has none.
func seqOf(t *testing.T, f frame) uint64 {
	t.Helper()
	if f.Seq == nil {
		t.Fatalf("%s has no seq: %s", f.Type, f.raw)
	}
	return *f.Seq
}

// eventsUntil reads c's events (skipping replies) until it has n sequenced ones.
func eventsUntil(t *testing.T, c *wsClient, n int) []frame {
	t.Helper()
	var out []frame
	for len(out) < n {
		f := c.next()
		if isEvent(f.Type) && f.Type != "TYPING_INDICATOR" {
			out = append(out, f)
		}
	}
	return out
}

// TestConnectedFirstWithLastSeq: CONNECTED comes first with the user, the connection, the
// session's expiry and lastSeq 0 for a user who never had an event; then lastSeq follows
// the user's events.
func TestConnectedFirstWithLastSeq(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob := sys.NewUser(t, "ca"), sys.NewUser(t, "cb")
	sys.Contact(t, alice, bob)
	b1 := dial(t, sys, bob.Token, "b1")
	if c := b1.connected; c.UserID != bob.ID || c.ConnectionID == "" || c.Resume != "none" || c.ExpiresAt < time.Now().Add(time.Hour).UnixMilli() {
		t.Fatalf("CONNECTED %+v: want user %d, a connection id, resume none, the session's expiry", c, bob.ID)
	}
	a1 := dial(t, sys, alice.Token, "a1")
	for i := range 3 {
		a1.call("SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": fmt.Sprint("m", i)})
	}
	evs := eventsUntil(t, b1, 3)
	last := seqOf(t, evs[2])
	b2 := dial(t, sys, bob.Token, "b2")
	if b2.connected.LastSeq < last {
		t.Fatalf("second connection: lastSeq %d, want at least %d", b2.connected.LastSeq, last)
	}
	if b2.connected.ConnectionID == b1.connected.ConnectionID {
		t.Fatal("two connections share a connection id")
	}
}

// TestSeqConsecutiveAcrossServices: one user's events from chat (messages, receipts),
// presence and notifications carry consecutive seqs, the same on every connection of the
// user; TYPING_INDICATOR carries none.
func TestSeqConsecutiveAcrossServices(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob := sys.NewUser(t, "qa"), sys.NewUser(t, "qb")
	chatID := strconv.FormatInt(sys.Contact(t, alice, bob), 10)
	a1 := dial(t, sys, alice.Token, "a1")
	a2 := dial(t, sys, alice.Token, "a2")
	start := a1.connected.LastSeq
	b1 := dial(t, sys, bob.Token, "b1") // PRESENCE_EVENT user_online to alice
	ack := b1.call("SEND_CHAT_MESSAGE", map[string]any{"toUserId": alice.ID, "text": "hi"})
	var sent struct{ MessageID string }
	ack.decode(t, &sent)
	if _, err := sys.Clients.Notify.CreateNotification(context.Background(), connect.NewRequest(&notifyv1.CreateNotificationRequest{
		UserId: alice.ID, Type: "system", Title: "t", Message: "m",
	})); err != nil {
		t.Fatal(err)
	}
	b1.call("TYPING_INDICATOR_ON", map[string]any{"chatId": chatID})
	typing := a1.event("TYPING_INDICATOR", func(frame) bool { return true })
	if typing.Seq != nil {
		t.Fatalf("TYPING_INDICATOR carries a seq: %s", typing.raw)
	}
	a1.call("MESSAGES_READ", map[string]any{"chatId": chatID})
	var got [2][]string
	for i, c := range []*wsClient{a1, a2} {
		evs := eventsUntil(t, c, 3)
		for j, f := range evs {
			if s := seqOf(t, f); s != start+uint64(j)+1 {
				t.Fatalf("%s event %d (%s): seq %d, want %d", c.name, j, f.Type, s, start+uint64(j)+1)
			}
			got[i] = append(got[i], fmt.Sprintf("%d:%s", *f.Seq, f.Type))
		}
	}
	if fmt.Sprint(got[0]) != fmt.Sprint(got[1]) {
		t.Fatalf("two connections of one user got different sequences: %v and %v", got[0], got[1])
	}
	// a2 also gets the read status of its own user's read (the reader's other
	// connections), with the next seq; a1 caused it and skips that seq.
	f := a2.event("MESSAGE_STATUS_UPDATE", func(f frame) bool { return true })
	if s := seqOf(t, f); s != start+4 {
		t.Fatalf("read status on the reader's other tab: seq %d, want %d", s, start+4)
	}
}

// TestResumeReplaysMissedEvents: a client that reconnects with the highest seq it saw
// gets exactly the events it missed, in order, with their original seqs — including the
// ones its old connection caused — and then live events, with no gap and no duplicate
// even while events keep coming during the replay.
func TestResumeReplaysMissedEvents(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob := sys.NewUser(t, "ra"), sys.NewUser(t, "rb")
	sys.Contact(t, alice, bob)
	a1 := dial(t, sys, alice.Token, "a1")
	b1 := dial(t, sys, bob.Token, "b1")
	a1.call("SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": "before"})
	// The highest seq b1 saw: that of "before" (alice's user_online, announced by presence
	// off its Connect call's path, may come first, and then it is not the message).
	var seen uint64
	for seen == 0 {
		if f := eventsUntil(t, b1, 1)[0]; f.Type == "NEW_CHAT_MESSAGE" {
			seen = seqOf(t, f)
		}
	}
	b1.ws.Close()
	const missed = 10 // alice sends 2*missed+1 frames: within the default burst of 40
	for i := range missed {
		a1.call("SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": fmt.Sprint("missed ", i)})
	}
	// Events keep coming while bob resumes.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range missed {
			a1.send("SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": fmt.Sprint("during ", i)})
		}
	}()
	b2 := dialResume(t, sys, bob.Token, "b2", seen)
	<-done
	if b2.connected.Resume != "ok" {
		t.Fatalf("resume after %d: %q, want ok", seen, b2.connected.Resume)
	}
	// Every event from seen+1 on, consecutively, until all 2*missed messages arrived
	// (bob's other events — a new_message notification, presence — come in between).
	texts := map[string]bool{}
	for i := 0; len(texts) < 2*missed; i++ {
		f := eventsUntil(t, b2, 1)[0]
		if s := seqOf(t, f); s != seen+uint64(i)+1 {
			t.Fatalf("event %d: seq %d, want %d (no gap, no duplicate)", i, s, seen+uint64(i)+1)
		}
		if f.Type == "NEW_CHAT_MESSAGE" {
			var m chatMessage
			f.decode(t, &m)
			if texts[m.Text] {
				t.Fatalf("%q delivered twice", m.Text)
			}
			texts[m.Text] = true
		}
	}
	for i := range missed {
		for _, p := range []string{"missed ", "during "} {
			if !texts[fmt.Sprint(p, i)] {
				t.Errorf("%q never arrived", fmt.Sprint(p, i))
			}
		}
	}
}

// TestResumeFailed: a seq above lastSeq (or no longer held) answers "failed", replays
// nothing, and live events follow from lastSeq + 1; a malformed resume is refused with
// 400 before the upgrade.
func TestResumeFailed(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob := sys.NewUser(t, "fa"), sys.NewUser(t, "fb")
	sys.Contact(t, alice, bob)
	a1 := dial(t, sys, alice.Token, "a1")
	a1.call("SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": "one"})
	b1 := dialResume(t, sys, bob.Token, "b1", 1000)
	last := b1.connected.LastSeq
	if b1.connected.Resume != "failed" || last == 0 {
		t.Fatalf("resume beyond lastSeq: %+v, want failed with bob's lastSeq (alice's presence and her message)", b1.connected)
	}
	a1.call("SEND_CHAT_MESSAGE", map[string]any{"toUserId": bob.ID, "text": "two"})
	f := b1.event("NEW_CHAT_MESSAGE", func(frame) bool { return true })
	if s := seqOf(t, f); s != last+1 {
		t.Fatalf("first live event after failed resume: seq %d, want lastSeq+1 = %d", s, last+1)
	}
	for _, bad := range []string{"-1", "abc", "", "1.5"} {
		_, ref := handshake(t, sys.URL(bob.Token)+"&resume="+bad, nil)
		if ref.Status != 400 || ref.Code != 400 || ref.Message == "" {
			t.Errorf("resume=%q: refusal %+v, want 400 naming resume", bad, ref)
		}
	}
	b0 := dialResume(t, sys, bob.Token, "b0", 0)
	if b0.connected.Resume != "ok" {
		t.Fatalf("resume=0: %q, want ok (everything is held)", b0.connected.Resume)
	}
	for i, f := range eventsUntil(t, b0, int(last)+1) {
		if s := seqOf(t, f); s != uint64(i)+1 {
			t.Fatalf("resume=0 replayed seq %d as event %d; want every seq from 1", s, i)
		}
	}
}

// TestRefreshSession: REFRESH_SESSION answers a new token that opens connections; the
// connection is bound to the new session (revoking the old one leaves it open, revoking the
// new one closes it with 4001); a second refresh within a minute is 429.
func TestRefreshSession(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice := sys.NewUser(t, "sr")
	a1 := dial(t, sys, alice.Token, "a1")
	f := a1.call("REFRESH_SESSION", nil)
	if f.Type != "SESSION_REFRESHED" {
		t.Fatalf("REFRESH_SESSION: %s", f.raw)
	}
	var p struct {
		Token     string `json:"token"`
		ExpiresAt int64  `json:"expiresAt"`
	}
	f.decode(t, &p)
	if p.Token == "" || p.Token == alice.Token || p.ExpiresAt < time.Now().Add(29*24*time.Hour).UnixMilli() {
		t.Fatalf("SESSION_REFRESHED %+v: want a new token with the default 30-day lifetime", p)
	}
	if again := a1.call("REFRESH_SESSION", nil); again.errorCode(t) != 429 {
		t.Fatalf("second refresh within a minute: %s, want 429", again.raw)
	}
	a2 := dial(t, sys, p.Token, "a2")
	if a2.connected.UserID != alice.ID {
		t.Fatalf("the new token opened a connection of user %d", a2.connected.UserID)
	}
	ctx := context.Background()
	if _, err := sys.Clients.Profile.RevokeSession(ctx, connect.NewRequest(&profilev1.RevokeSessionRequest{Token: alice.Token})); err != nil {
		t.Fatal(err)
	}
	if f := a1.call("GET_CHAT_LIST", nil); f.Type != "CHAT_LIST" {
		t.Fatalf("after revoking the old session, the refreshed connection answered %s", f.raw)
	}
	if _, err := sys.Clients.Profile.RevokeSession(ctx, connect.NewRequest(&profilev1.RevokeSessionRequest{Token: p.Token})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wsClient{a1, a2} {
		if code, _ := c.closeCode(); code != 4001 {
			t.Fatalf("%s after revoking the new session: close %d, want 4001", c.name, code)
		}
	}
}

// TestConnectionCap: the connection that exceeds MAX_CONNECTIONS_PER_USER (10) is
// accepted, and the user's oldest connection is closed with 4002.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice := sys.NewUser(t, "cap")
	var cs []*wsClient
	for i := range 11 {
		cs = append(cs, dial(t, sys, alice.Token, fmt.Sprint("a", i)))
		time.Sleep(2 * time.Millisecond) // distinct upgrade times
	}
	if code, reason := cs[0].closeCode(); code != 4002 || reason != "too many connections" {
		t.Fatalf("oldest connection: close %d %q, want 4002 too many connections", code, reason)
	}
	for _, c := range cs[1:] {
		if f := c.call("GET_CHAT_LIST", nil); f.Type != "CHAT_LIST" {
			t.Fatalf("%s: %s, want it open", c.name, f.raw)
		}
	}
}
