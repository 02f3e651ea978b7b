package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/structpb"

	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"

	"github.com/charla/charla/edge"
)

// TestTyping: ON reaches the other participant (not the typer's other tab), OFF follows.
func TestTyping(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice, bob := sys.NewUser(t, "ta"), sys.NewUser(t, "tb")
	chatID := strconv.FormatInt(sys.Contact(t, alice, bob), 10)
	a1, a2, b := dial(t, sys, alice.Token, "a1"), dial(t, sys, alice.Token, "a2"), dial(t, sys, bob.Token, "b")
	for _, c := range []*wsClient{a1, a2, b} {
		c.call("GET_CHAT_LIST", nil)
	}
	if f := a1.call("TYPING_INDICATOR_ON", map[string]any{"chatId": chatID}); f.Type != "SERVER_ACK" || string(f.Payload) != "{}" {
		t.Fatalf("ON: got %s %s, want SERVER_ACK {}", f.Type, f.Payload)
	}
	var ti struct {
		ChatID      string `json:"chatId"`
		UserID      int64  `json:"userId"`
		IsTyping    bool   `json:"isTyping"`
		ExpiresInMs int64  `json:"expiresInMs"`
	}
	b.event("TYPING_INDICATOR", nil).decode(t, &ti)
	if ti.ChatID != chatID || ti.UserID != alice.ID || !ti.IsTyping || ti.ExpiresInMs <= 0 {
		t.Errorf("ON event: got %+v", ti)
	}
	a1.call("TYPING_INDICATOR_OFF", map[string]any{"chatId": chatID})
	b.event("TYPING_INDICATOR", nil).decode(t, &ti)
	if ti.IsTyping || ti.ExpiresInMs != 0 {
		t.Errorf("OFF event: got %+v, want isTyping false, expiresInMs 0", ti)
	}
	if a2.sawBefore("TYPING_INDICATOR", nil) {
		t.Error("the typer's other tab received its typing indicator")
	}
	if f := a1.call("TYPING_INDICATOR_ON", map[string]any{"chatId": "999999999"}); f.errorCode(t) != 404 {
		t.Errorf("typing in a chat that is not mine: got %s %s, want 404", f.Type, f.Payload)
	}
}

// TestNotifications: a notification created over RPC arrives live, is listed, and is
// marked read.
func TestNotifications(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	u := sys.NewUser(t, "nt")
	c := dial(t, sys, u.Token, "nt")
	c.call("GET_CHAT_LIST", nil)
	payload, _ := structpb.NewStruct(map[string]any{"k": "v"})
	if _, err := sys.Clients.Notify.CreateNotification(context.Background(), connect.NewRequest(&notifyv1.CreateNotificationRequest{
		UserId: u.ID, Type: "system", Title: "Hola", Message: "bienvenido", Payload: payload,
	})); err != nil {
		t.Fatal(err)
	}
	type info struct {
		ID        string         `json:"id"`
		Type      string         `json:"type"`
		Title     string         `json:"title"`
		Message   string         `json:"message"`
		Timestamp string         `json:"timestamp"`
		IsRead    bool           `json:"isRead"`
		Payload   map[string]any `json:"payload"`
	}
	var live info
	c.event("NEW_NOTIFICATION", nil).decode(t, &live)
	if live.Type != "system" || live.Title != "Hola" || live.Payload["k"] != "v" || live.IsRead {
		t.Errorf("NEW_NOTIFICATION: got %+v", live)
	}
	ts, err := time.Parse("2006-01-02T15:04:05.000Z", live.Timestamp)
	if err != nil || time.Since(ts) > time.Hour {
		t.Errorf("timestamp %q: want RFC 3339 UTC with milliseconds (%v)", live.Timestamp, err)
	}
	var list struct {
		Notifications []info `json:"notifications"`
		UnreadCount   int    `json:"unreadCount"`
	}
	c.call("GET_NOTIFICATIONS", map[string]any{"limit": 10}).decode(t, &list)
	if len(list.Notifications) == 0 || list.Notifications[0].ID != live.ID || list.UnreadCount == 0 {
		t.Errorf("list: got %+v, want the new one first", list)
	}
	f := c.call("MARK_NOTIFICATION_READ", map[string]any{"notificationId": live.ID})
	if f.Type != "SERVER_ACK" || !strings.Contains(string(f.Payload), `"updated":1`) {
		t.Errorf("mark read: got %s %s, want updated 1", f.Type, f.Payload)
	}
	f = c.call("MARK_NOTIFICATION_READ", map[string]any{"all": true})
	if f.Type != "SERVER_ACK" {
		t.Errorf("mark all: got %s %s", f.Type, f.Payload)
	}
}

// TestProfile: GET_MY_PROFILE has six [] curriculum sections; UPDATE_MY_PROFILE applies and
// rejects unknown keys by name; a non-contact's profile hides email and presence.
func TestProfile(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	u, other := sys.NewUser(t, "pf"), sys.NewUser(t, "po")
	c := dial(t, sys, u.Token, "pf")
	f := c.call("GET_MY_PROFILE", nil)
	for _, section := range []string{"education", "experience", "certifications", "skills", "languages", "projects"} {
		if !strings.Contains(string(f.Payload), `"`+section+`":[`) {
			t.Errorf("MY_PROFILE_DATA: %s is not a list: %s", section, f.Payload)
		}
	}
	f = c.call("UPDATE_MY_PROFILE", map[string]any{"summary": "hola", "curriculum": map[string]any{
		"skills": []any{map[string]any{"name": "Go", "level": 5}},
	}})
	var p struct {
		ID         int64  `json:"id"`
		Summary    string `json:"summary"`
		Email      string `json:"email"`
		Curriculum struct {
			Skills []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"skills"`
		} `json:"curriculum"`
	}
	f.decode(t, &p)
	if f.Type != "MY_PROFILE_DATA" || p.Summary != "hola" || len(p.Curriculum.Skills) != 1 || p.Curriculum.Skills[0].ID == "" {
		t.Fatalf("update: got %s %s", f.Type, f.Payload)
	}
	f = c.call("UPDATE_MY_PROFILE", map[string]any{"summary": "x", "userName": "hacker"})
	if f.errorCode(t) != 400 || !strings.Contains(string(f.Payload), "userName") {
		t.Errorf("unknown key: got %s %s, want 400 naming userName", f.Type, f.Payload)
	}
	f = c.call("GET_USER_PROFILE", map[string]any{"userId": other.ID})
	f.decode(t, &p)
	if f.Type != "USER_PROFILE_DATA" || p.ID != other.ID || p.Email != "" {
		t.Errorf("non-contact profile: got %s %s, want no email", f.Type, f.Payload)
	}
}

// TestExpiredSessionCloses4001: a session that expires while connected is closed with
// 4001 "session expired".
func TestExpiredSessionCloses4001(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, func(c *edge.Config) { c.SessionCheckInterval = 100 * time.Millisecond })
	u := sys.NewUser(t, "ex")
	sess, err := sys.Clients.Profile.CreateSession(context.Background(), connect.NewRequest(&profilev1.CreateSessionRequest{UserId: u.ID, TtlSeconds: 1}))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, sys, sess.Msg.GetToken(), "ex")
	code, reason := c.closeCode()
	if code != 4001 || reason != "session expired" {
		t.Errorf("close: got %d %q, want 4001 \"session expired\"", code, reason)
	}
}

// TestShutdownCloses1001: draining the edge closes connections with 1001 and refuses new ones.
func TestShutdownCloses1001(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	u := sys.NewUser(t, "sd")
	c := dial(t, sys, u.Token, "sd")
	c.call("GET_CHAT_LIST", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sys.Edge.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.closeCode(); code != 1001 {
		t.Errorf("close: got %d, want 1001", code)
	}
	if _, got := handshake(t, sys.URL(u.Token), nil); got.Status == 101 {
		t.Error("a handshake succeeded after shutdown")
	}
}
