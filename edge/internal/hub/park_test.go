package hub

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/charla/charla/shared/waittest"
)

// parkingConfig parks connections after 5 ms without a message.
func parkingConfig() Config {
	cfg := DefaultConfig()
	cfg.ParkAfter = 5 * time.Millisecond
	return cfg
}

// pingingServer serves parkingConfig with the server's pings every ping and a
// PongWait of pongWait, and echo callbacks recorded by the returned recorder.
func pingingServer(t *testing.T, ping, pongWait time.Duration) (*testServer, *recorder) {
	cfg := parkingConfig()
	cfg.PingPeriod = ping
	cfg.PongWait = pongWait
	rec := newRecorder()
	return newTestServer(t, cfg, echoCallbacks(rec)), rec
}

func TestIdleConnectionParksAndWakes(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	ts := newTestServer(t, parkingConfig(), echoCallbacks(rec))
	c := ts.dial(t, 1)
	for i := range 3 {
		waittest.Until(t, "the connection to park", func() bool { return ts.m.ParkedCount() == 1 })
		msg := "m" + string(rune('0'+i))
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := readText(t, c); got != "echo:"+msg {
			t.Fatalf("reply %d: got %q, want %q", i, got, "echo:"+msg)
		}
	}
	// Server-initiated events reach a parked connection too: writing needs no reader.
	waittest.Until(t, "the connection to park again", func() bool { return ts.m.ParkedCount() == 1 })
	if n := ts.m.sendToUser(1, []byte("event"), ""); n != 1 {
		t.Fatalf("sendToUser reached %d connections, want 1", n)
	}
	if got := readText(t, c); got != "event" {
		t.Fatalf("event: got %q", got)
	}
}

func TestNeverParkKeepsTheReader(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.ParkAfter = -1
	ts := newTestServer(t, cfg, echoCallbacks(newRecorder()))
	c := ts.dial(t, 1)
	if err := c.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
		t.Fatal(err)
	}
	readText(t, c)
	// Waiting for a park that must not come would take longer than the default's
	// second and still prove little: check what parking needs instead.
	conn, ok := ts.m.oneConnection(1)
	if !ok {
		t.Fatal("user 1 has no connection")
	}
	if ts.m.poller != nil || conn.fd != -1 {
		t.Fatalf("ParkAfter < 0: poller %v, descriptor %d; want no poller and -1", ts.m.poller, conn.fd)
	}
	if n := ts.m.ParkedCount(); n != 0 {
		t.Fatalf("ParkAfter < 0: %d connections parked", n)
	}
}

// A parked connection reads the client's pongs itself and parks again: if gorilla
// read them, its reader would stay blocked in NextReader until the next message.
func TestPongsKeepAConnectionParked(t *testing.T) {
	t.Parallel()
	ts, rec := pingingServer(t, 20*time.Millisecond, 300*time.Millisecond)
	pings := answerPings(ts.dial(t, 1))
	// 25 pings span 500 ms, beyond PongWait: only the pongs kept it open.
	for range 25 {
		select {
		case <-pings:
		case <-time.After(5 * time.Second):
			t.Fatal("no ping from the server")
		}
	}
	if rec.disconnects() != 0 || !ts.m.isUserOnline(1) {
		t.Fatal("a parked client that answers pings was dropped")
	}
	waittest.Until(t, "the connection to park between pongs", func() bool { return ts.m.ParkedCount() == 1 })
}

// The read deadline holds while no goroutine reads: a parked client that stops
// answering pings is dropped after PongWait.
func TestSilentParkedConnectionIsDropped(t *testing.T) {
	t.Parallel()
	ts, rec := pingingServer(t, 50*time.Millisecond, 200*time.Millisecond)
	c := ts.dial(t, 1)
	c.SetPingHandler(func(string) error { return nil }) // no pong
	waittest.Until(t, "the connection to park", func() bool { return ts.m.ParkedCount() == 1 })
	select {
	case err := <-rec.discCh:
		if err == nil {
			t.Fatal("OnDisconnect got no cause for a connection that timed out")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a silent parked connection was not dropped")
	}
	if n := ts.m.ParkedCount(); n != 0 {
		t.Fatalf("ParkedCount() = %d after the drop, want 0", n)
	}
}

func TestParkedConnectionsCloseAndShutDown(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	ts := newTestServer(t, parkingConfig(), echoCallbacks(rec))
	a, b, c := ts.dial(t, 1), ts.dial(t, 2), ts.dial(t, 3)
	waittest.Until(t, "three parked connections", func() bool { return ts.m.ParkedCount() == 3 })

	// Closed by the server: the close frame goes out and the peer's answer is read.
	conn, ok := ts.m.oneConnection(1)
	if !ok {
		t.Fatal("user 1 has no connection")
	}
	conn.Close(4000, "bye")
	expectClose(t, a, 4000)
	// Closed by the client: the close frame wakes the connection.
	if err := b.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	expectClose(t, b, websocket.CloseNormalClosure)
	waittest.Until(t, "two disconnects", func() bool { return rec.disconnects() == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.m.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	expectClose(t, c, websocket.CloseGoingAway)
	if n, p := rec.disconnects(), ts.m.ParkedCount(); n != 3 || p != 0 {
		t.Fatalf("after Shutdown: %d disconnects, %d parked; want 3, 0", n, p)
	}
}

// A client that sends its first frame right behind the upgrade request (before
// the 101) is still read: the hub keeps the server's buffer that holds it.
func TestFrameSentWithTheUpgradeRequest(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, parkingConfig(), echoCallbacks(newRecorder()))
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := "GET /ws?user=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), maskedText("early")...)); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	hdr := make([]byte, 2)
	if _, err := br.Read(hdr[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := br.Read(hdr[1:]); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, hdr[1]&0x7F)
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0x81 || string(payload) != "echo:early" {
		t.Fatalf("got frame %x %q, want a text frame \"echo:early\"", hdr[0], payload)
	}
}

// maskedText is a client's text frame (FIN, masked) carrying s (< 126 bytes).
func maskedText(s string) []byte {
	key := [4]byte{1, 2, 3, 4}
	f := []byte{0x81, 0x80 | byte(len(s)), key[0], key[1], key[2], key[3]}
	for i := range len(s) {
		f = append(f, s[i]^key[i%4])
	}
	return f
}

// A grace so short that it has passed before the read is tried (Go checks the
// deadline first) must not park a woken connection again and again: a reader
// that wake started reads under the real deadline.
func TestTinyParkAfterStillReads(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.ParkAfter = time.Nanosecond
	ts := newTestServer(t, cfg, echoCallbacks(newRecorder()))
	c := ts.dial(t, 1)
	for i := range 5 {
		time.Sleep(2 * time.Millisecond)
		msg := "t" + string(rune('0'+i))
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := readText(t, c); got != "echo:"+msg {
			t.Fatalf("reply %d: got %q", i, got)
		}
	}
}
