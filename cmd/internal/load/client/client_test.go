package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"ws://127.0.0.1:8080/ws", true},
		{"ws://127.0.0.9:8080/ws", true},
		{"http://localhost:8090", true},
		{"ws://[::1]:8080/ws", true},
		{"ws://10.0.0.1:8080/ws", false},
		{"ws://example.com/ws", false},
		{"ws://0.0.0.0:8080/ws", false},
		{"::bad", false},
	} {
		if err := CheckLoopback(tc.url); (err == nil) != tc.ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

// TestCloseCode reads the close code a server sends, and tells a connection that just
// ends from one closed with a frame.
func TestCloseCode(t *testing.T) {
	t.Parallel()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		if r.URL.Query().Get("how") == "frame" {
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1011, "events unavailable: reconnect"), time.Now().Add(time.Second))
			ws.ReadMessage() // until the client answers or goes
		}
	}))
	defer srv.Close()
	d := NewDialer(1)
	for how, want := range map[string]int{"frame": 1011, "drop": 1006} {
		c, err := d.Dial(context.Background(), 0, "ws"+strings.TrimPrefix(srv.URL, "http")+"/?how="+how, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Wait for the reader to end (First is closed just before Err is set visible).
		for deadline := time.Now().Add(5 * time.Second); c.Err() == nil && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		code, reason := CloseCode(c.Err())
		if code != want || (how == "frame" && reason != "events unavailable: reconnect") {
			t.Errorf("%s: CloseCode(%v) = %d %q, want %d", how, c.Err(), code, reason, want)
		}
		c.Close(false)
	}
	if code, _ := CloseCode(nil); code != 0 {
		t.Errorf("CloseCode(nil) = %d, want 0", code)
	}
}
