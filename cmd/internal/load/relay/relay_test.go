package relay

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestRelayResume numbers a recipient's events and replays those after resume=<seq>, and
// its faults break that as documented.
func TestRelayResume(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fault  string
		replay []int64 // seqs replayed after resume=2 with 4 events held
	}{{"", []int64{3, 4}}, {"skip", nil}, {"repeat", []int64{2, 3, 4}}} {
		t.Run("fault="+tc.fault, func(t *testing.T) {
			t.Parallel()
			r := New(Options{Resume: true, ResumeFault: tc.fault})
			srv := httptest.NewServer(r)
			t.Cleanup(func() { r.Close(); srv.Close() })
			base := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws?token="
			dial := func(q string) (*websocket.Conn, wire.Frame) {
				ws, _, err := websocket.DefaultDialer.Dial(base+q, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ws.Close() })
				return ws, readFrame(t, ws)
			}
			alice, _ := dial("r1")
			bob, first := dial("r2")
			if string(wire.Field(first.Payload, "lastSeq")) != "0" || string(wire.Field(first.Payload, "resume")) != "none" {
				t.Fatalf("first CONNECTED %s, want lastSeq 0, resume none", first.Payload)
			}
			send := func(n int) {
				for i := range n {
					if err := alice.WriteMessage(websocket.TextMessage, wire.AppendSend(nil, "c", 2, "x", "m"+strconv.Itoa(i))); err != nil {
						t.Fatal(err)
					}
					if f := readFrame(t, alice); string(f.Type) != wire.TypeAck {
						t.Fatalf("sender got %s, want SERVER_ACK", f.Type)
					}
				}
			}
			send(2)
			for want := int64(1); want <= 2; want++ {
				if f := readFrame(t, bob); string(f.Type) != wire.TypeNewMsg || f.Seq != want {
					t.Fatalf("live event %s seq %d, want NEW_CHAT_MESSAGE seq %d", f.Type, f.Seq, want)
				}
			}
			bob.Close()
			send(2) // seqs 3 and 4, while bob is away
			bob, c := dial("r2&resume=2")
			if string(wire.Field(c.Payload, "resume")) != "ok" || string(wire.Field(c.Payload, "lastSeq")) != "4" {
				t.Fatalf("CONNECTED %s, want resume ok, lastSeq 4", c.Payload)
			}
			send(1) // seq 5, live after the replay
			var got []int64
			for f := readFrame(t, bob); ; f = readFrame(t, bob) {
				if f.Seq == 5 {
					break
				}
				got = append(got, f.Seq)
			}
			if !slices.Equal(got, tc.replay) {
				t.Errorf("replayed seqs %v, want %v", got, tc.replay)
			}
			if _, c := dial("r2&resume=99"); string(wire.Field(c.Payload, "resume")) != "failed" {
				t.Errorf("resume past lastSeq: CONNECTED %s, want failed", c.Payload)
			}
			if _, resp, err := websocket.DefaultDialer.Dial(base+"r2&resume=x", nil); err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Errorf("resume=x: %v, want HTTP 400", err)
			}
		})
	}
}

func readFrame(t *testing.T, ws *websocket.Conn) wire.Frame {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
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
