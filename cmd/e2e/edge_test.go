package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/gorilla/websocket"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"

	"github.com/charla/charla/edge"
)

func TestHandshake(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	alice := sys.NewUser(t, "hs")
	base := "ws://" + sys.EdgeAddr + "/ws"
	tests := []struct {
		name       string
		url        string
		header     http.Header
		wantStatus int
	}{
		{"query token", base + "?token=" + alice.Token, nil, 101},
		{"query Bearer token", base + "?token=Bearer%20" + alice.Token, nil, 101},
		{"header token", base, http.Header{"Authorization": {"Bearer " + alice.Token}}, 101},
		{"both equal", base + "?token=" + alice.Token, http.Header{"Authorization": {"Bearer " + alice.Token}}, 101},
		{"both different", base + "?token=" + alice.Token, http.Header{"Authorization": {"Bearer other"}}, 401},
		{"missing", base, nil, 401},
		{"unknown", base + "?token=nope", nil, 401},
		{"origin not allowed", base + "?token=" + alice.Token, http.Header{"Origin": {"http://evil.example"}}, 403},
		{"same origin", base + "?token=" + alice.Token, http.Header{"Origin": {"http://" + sys.EdgeAddr}}, 101},
		{"bad origin and bad token", base + "?token=nope", http.Header{"Origin": {"http://evil.example"}}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := handshake(t, tt.url, tt.header)
			if got.Status != tt.wantStatus {
				t.Fatalf("status: got %d, want %d (%+v)", got.Status, tt.wantStatus, got)
			}
			if tt.wantStatus != 101 {
				if got.ContentType != "application/json" || got.Code != tt.wantStatus || got.Message == "" {
					t.Errorf("refusal: got %+v, want JSON {code: %d, message}", got, tt.wantStatus)
				}
			}
		})
	}

	t.Run("revoked token", func(t *testing.T) {
		u := sys.NewUser(t, "hsr")
		if _, err := sys.Clients.Profile.RevokeSession(context.Background(), connect.NewRequest(&profilev1.RevokeSessionRequest{Token: u.Token})); err != nil {
			t.Fatal(err)
		}
		if _, got := handshake(t, sys.URL(u.Token), nil); got.Status != 401 {
			t.Errorf("status: got %d, want 401", got.Status)
		}
	})
}

func TestFrameRules(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	u := sys.NewUser(t, "fr")
	c := dial(t, sys, u.Token, "fr")

	// pid rules: absent, null and "" get a generated one; bad ones get 400 with a generated one.
	for _, raw := range []string{`{"type":"GET_CHAT_LIST"}`, `{"type":"GET_CHAT_LIST","pid":null}`, `{"type":"GET_CHAT_LIST","pid":""}`} {
		c.sendRaw(raw)
		f := c.next()
		if f.Type != "CHAT_LIST" || f.PID == "" {
			t.Errorf("%s: got %s pid %q, want CHAT_LIST with a generated pid", raw, f.Type, f.PID)
		}
	}
	for _, raw := range []string{`{"type":"GET_CHAT_LIST","pid":12}`, `{"type":"GET_CHAT_LIST","pid":"` + strings.Repeat("x", 65) + `"}`, `not json`, `[]`} {
		c.sendRaw(raw)
		f := c.next()
		if f.errorCode(t) != 400 || f.PID == "" || f.PID == "12" {
			t.Errorf("%s: got %s %s pid %q, want 400 with a generated pid", raw, f.Type, f.Payload, f.PID)
		}
	}
	for _, tt := range []struct {
		raw  string
		want int
	}{
		{`{"pid":"a","type":"NOPE"}`, 400},
		{`{"pid":"a","type":"get_chat_list"}`, 400},
		{`{"pid":"a"}`, 400},
		{`{"pid":"a","type":"GET_NOTIFICATIONS","payload":7}`, 400},
		{`{"pid":"a","type":"GET_USER_PROFILE","payload":{"userId":"1"}}`, 400},
		{`{"pid":"a","type":"GET_USER_PROFILE","payload":{"userId":1.5}}`, 400},
		{`{"pid":"a","type":"GET_USER_PROFILE","payload":{"userId":99999999}}`, 404},
		{`{"pid":"a","type":"MESSAGES_READ","payload":{"chatId":"007"}}`, 400},
		{`{"pid":"a","type":"MESSAGES_READ","payload":{"chatId":"999999"}}`, 404},
		{`{"pid":"a","type":"SEND_CHAT_MESSAGE","payload":{"toUserId":99999999,"text":"x"}}`, 404},
		{`{"pid":"a","type":"SEND_CHAT_MESSAGE","payload":{"toUserId":99999999,"text":"  "}}`, 400},
		{`{"pid":"a","type":"SEND_CHAT_MESSAGE","payload":{"toUserId":99999999,"text":"` + strings.Repeat("é", 2001) + `"}}`, 413},
		{`{"pid":"a","type":"MARK_NOTIFICATION_READ","payload":{}}`, 400},
		{`{"pid":"a","type":"MARK_NOTIFICATION_READ","payload":{"notificationId":"999999"}}`, 404},
		{`{"pid":"a","type":"GET_CHAT_MESSAGES","payload":{"chatId":"1","limit":500}}`, 400},
		{`{"pid":"a","type":"UPDATE_MY_PROFILE","payload":{"email":"x@y.z"}}`, 400},
		{`{"pid":"a","type":"GET_CHAT_LIST","payload":"ignored"}`, 0},
	} {
		c.sendRaw(tt.raw)
		f := c.next()
		if got := f.errorCode(t); got != tt.want || f.PID != "a" {
			t.Errorf("%s: got %d pid %q (%s), want %d pid a", tt.raw, got, f.PID, f.Payload, tt.want)
		}
	}
	// The connection stayed open through every error.
	if f := c.call("GET_NOTIFICATIONS", nil); f.Type != "NOTIFICATION_LIST" {
		t.Fatalf("after errors: got %s, want NOTIFICATION_LIST", f.Type)
	}
	var list struct {
		Notifications []json.RawMessage `json:"notifications"`
		UnreadCount   *int              `json:"unreadCount"`
	}
	f := c.call("GET_NOTIFICATIONS", map[string]any{"unreadOnly": true})
	f.decode(t, &list)
	if list.Notifications == nil || list.UnreadCount == nil || !strings.Contains(string(f.Payload), `"notifications":[`) {
		t.Errorf("empty list: got %s, want notifications [] and unreadCount", f.Payload)
	}
}

func TestSocketLimits(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, func(c *edge.Config) {
		c.Hub.RateLimit = 5
		c.Hub.RateBurst = 5
	})
	u := sys.NewUser(t, "lim")
	tests := []struct {
		name string
		send func(ws *websocket.Conn) error
		want int
	}{
		{"binary", func(ws *websocket.Conn) error { return ws.WriteMessage(websocket.BinaryMessage, []byte("{}")) }, websocket.CloseUnsupportedData},
		{"too big", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"GET_CHAT_LIST","payload":"`+strings.Repeat("x", 17000)+`"}`))
		}, websocket.CloseMessageTooBig},
		{"invalid utf-8", func(ws *websocket.Conn) error {
			return ws.WriteMessage(websocket.TextMessage, []byte("{\"type\":\"GET_CHAT_LIST\",\"pid\":\"\xff\"}"))
		}, websocket.CloseInvalidFramePayloadData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, sys, u.Token, "lim")
			if err := tt.send(c.ws); err != nil {
				t.Fatal(err)
			}
			if code, _ := c.closeCode(); code != tt.want {
				t.Errorf("close code: got %d, want %d", code, tt.want)
			}
		})
	}
	t.Run("rate", func(t *testing.T) {
		c := dial(t, sys, u.Token, "rate")
		const n = 30
		for i := 0; i < n; i++ {
			c.sendRaw(`{"type":"GET_CHAT_LIST","pid":"r` + strconv.Itoa(i) + `"}`)
		}
		limited := 0
		for i := 0; i < n; i++ {
			f := c.next()
			if f.PID != "r"+strconv.Itoa(i) {
				t.Fatalf("reply %d: got pid %q, want r%d (one reply per frame, in order)", i, f.PID, i)
			}
			if f.errorCode(t) == 429 {
				limited++
			}
		}
		if limited == 0 {
			t.Errorf("got no 429 for %d frames at once with burst 5", n)
		}
	})
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	u := sys.NewUser(t, "hr")
	dial(t, sys, u.Token, "hr").call("GET_CHAT_LIST", nil)
	res, err := http.Get(sys.HTTPURL("/health"))
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status            string `json:"status"`
		ActiveConnections *int   `json:"active_connections"`
		Timestamp         int64  `json:"timestamp"`
	}
	err = json.NewDecoder(res.Body).Decode(&h)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || h.Status != "ok" || h.ActiveConnections == nil || *h.ActiveConnections != 1 || h.Timestamp < time.Now().Add(-time.Hour).Unix() {
		t.Errorf("/health: got %d %+v %v", res.StatusCode, h, err)
	}
	// /ready turns 200 once the event streams and the lease are up.
	deadline := time.Now().Add(waitLimit)
	for {
		res, err := http.Get(sys.HTTPURL("/ready"))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready: got %d %v, want 200", res.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAllowedOrigins(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, func(c *edge.Config) { c.Hub.AllowedOrigins = []string{"https://chat.example"} })
	u := sys.NewUser(t, "ao")
	for origin, want := range map[string]int{"https://chat.example": 101, "https://evil.example": 403, "http://" + sys.EdgeAddr: 403, "": 101} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		if _, got := handshake(t, sys.URL(u.Token), h); got.Status != want {
			t.Errorf("origin %q: got %d, want %d", origin, got.Status, want)
		}
	}
}
