package relay

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/charla/charla/cmd/internal/load/wire"
)

func TestRelayFrames(t *testing.T) {
	t.Parallel()
	r := New(Options{})
	srv := httptest.NewServer(r)
	t.Cleanup(func() { r.Close(); srv.Close() })
	base := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws?token="

	if _, resp, err := websocket.DefaultDialer.Dial(base+"nope", nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token: err %v, want HTTP 401", err)
	}
	dial := func(tok string) *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(base+tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	read := func(ws *websocket.Conn) wire.Frame {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		f, err := wire.Scan(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return f
	}
	alice, bob := dial("r1"), dial("r2")
	for _, ws := range []*websocket.Conn{alice, bob} {
		if f := read(ws); string(f.Type) != wire.TypeConnected {
			t.Fatalf("first frame %s, want CONNECTED", f.Type)
		}
	}
	if err := alice.WriteMessage(websocket.TextMessage, wire.AppendSend(nil, "c-1", 2, "hola", "m1")); err != nil {
		t.Fatal(err)
	}
	if f := read(alice); string(f.Type) != wire.TypeAck || string(f.PID) != "c-1" {
		t.Errorf("sender got %s pid %s, want SERVER_ACK c-1", f.Type, f.PID)
	}
	f := read(bob)
	if string(f.Type) != wire.TypeNewMsg || string(wire.Field(f.Payload, "clientMessageId")) != "m1" ||
		string(wire.Field(f.Payload, "text")) != "hola" || string(wire.Field(f.Payload, "fromUserId")) != "1" {
		t.Errorf("recipient got %s %s, want NEW_CHAT_MESSAGE m1 from 1", f.Type, f.Payload)
	}
	if err := alice.WriteMessage(websocket.TextMessage, []byte(`{"type":"GET_CHAT_LIST","pid":"c-2"}`)); err != nil {
		t.Fatal(err)
	}
	if f := read(alice); string(f.Type) != wire.TypeError || string(wire.Field(f.Payload, "code")) != "400" {
		t.Errorf("unsupported frame: got %s %s, want ERROR_NOTIFICATION 400", f.Type, f.Payload)
	}
}
