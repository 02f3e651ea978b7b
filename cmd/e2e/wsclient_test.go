package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/charla/charla/cmd/internal/system/systemtest"
	"github.com/charla/charla/edge"
)

// waitLimit bounds every wait so that a broken flow fails instead of hanging; it is not a
// speed assertion.
const waitLimit = 15 * time.Second

// startEdgeSystem starts the whole system with an edge tuned for tests: a short presence
// grace, so offline events come quickly.
func startEdgeSystem(t *testing.T, tune func(*edge.Config)) *systemtest.System {
	t.Helper()
	return systemtest.Start(t, systemtest.Options{EdgeConfig: func(c *edge.Config) {
		c.PresenceGrace = 50 * time.Millisecond
		if tune != nil {
			tune(c)
		}
	}})
}

// frame is a server frame.
type frame struct {
	PID     string          `json:"pid"`
	Type    string          `json:"type"`
	Seq     *uint64         `json:"seq"`
	Payload json.RawMessage `json:"payload"`
	raw     []byte
}

func (f frame) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(f.Payload, v); err != nil {
		t.Fatalf("payload of %s: %v (%s)", f.Type, err, f.Payload)
	}
}

func (f frame) errorCode(t *testing.T) int {
	t.Helper()
	if f.Type != "ERROR_NOTIFICATION" {
		return 0
	}
	var p struct{ Code int }
	f.decode(t, &p)
	return p.Code
}

// wsClient is a real gorilla client with a reader goroutine; frames queue in order.
type wsClient struct {
	t      *testing.T
	name   string
	ws     *websocket.Conn
	in     chan frame
	closed chan struct{}
	err    error // read error, set before closed is closed
	seq    atomic.Int64
	kept   []frame // frames read while looking for something else
	// connected is the CONNECTED frame's payload, the first frame of every connection.
	connected connectedPayload
}

// connectedPayload is CONNECTED (docs/protocol.md §8.1).
type connectedPayload struct {
	UserID       int64  `json:"userId"`
	ConnectionID string `json:"connectionId"`
	LastSeq      uint64 `json:"lastSeq"`
	ExpiresAt    int64  `json:"expiresAt"`
	Resume       string `json:"resume"`
}

// dial connects with token and reads the CONNECTED frame that must come first.
func dial(t *testing.T, sys *systemtest.System, token, name string) *wsClient {
	t.Helper()
	return dialURL(t, sys.URL(token), name)
}

// dialResume connects asking to resume after seq.
func dialResume(t *testing.T, sys *systemtest.System, token, name string, seq uint64) *wsClient {
	t.Helper()
	return dialURL(t, sys.URL(token)+"&resume="+strconv.FormatUint(seq, 10), name)
}

func dialURL(t *testing.T, url, name string) *wsClient {
	t.Helper()
	ws, res, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("%s: dial: %v (status %d)", name, err, status)
	}
	c := &wsClient{t: t, name: name, ws: ws, in: make(chan frame, 4096), closed: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { ws.Close() })
	first := c.next()
	if first.Type != "CONNECTED" || first.Seq != nil || first.PID == "" {
		t.Fatalf("%s: first frame %s, want CONNECTED with a pid and no seq", name, first.raw)
	}
	first.decode(t, &c.connected)
	return c
}

func (c *wsClient) read() {
	defer close(c.closed)
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		if typ != websocket.TextMessage {
			c.err = fmt.Errorf("server sent a non-text message (%d)", typ)
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.err = fmt.Errorf("server sent invalid JSON %q: %w", data, err)
			return
		}
		f.raw = data
		c.in <- f
	}
}

// sendRaw writes a text frame.
func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

// send writes a frame with a fresh pid and returns the pid.
func (c *wsClient) send(typ string, payload any) string {
	c.t.Helper()
	pid := fmt.Sprintf("%s-%d", c.name, c.seq.Add(1))
	b, err := json.Marshal(map[string]any{"type": typ, "pid": pid, "payload": payload})
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
	return pid
}

// next returns the next frame (kept ones first).
func (c *wsClient) next() frame {
	c.t.Helper()
	if len(c.kept) > 0 {
		f := c.kept[0]
		c.kept = c.kept[1:]
		return f
	}
	select {
	case f := <-c.in:
		return f
	case <-c.closed:
		select {
		case f := <-c.in:
			return f
		default:
		}
		c.t.Fatalf("%s: connection closed: %v", c.name, c.err)
	case <-time.After(waitLimit):
		c.t.Fatalf("%s: no frame within %v", c.name, waitLimit)
	}
	return frame{}
}

// await returns the first frame matching ok; frames skipped are kept for later.
func (c *wsClient) await(what string, ok func(frame) bool) frame {
	c.t.Helper()
	for i, f := range c.kept {
		if ok(f) {
			c.kept = append(c.kept[:i:i], c.kept[i+1:]...)
			return f
		}
	}
	var skipped []frame
	deadline := time.After(waitLimit)
	for {
		select {
		case f := <-c.in:
			if ok(f) {
				c.kept = append(c.kept, skipped...)
				return f
			}
			skipped = append(skipped, f)
		case <-c.closed:
			c.t.Fatalf("%s: closed while waiting for %s: %v (skipped %v)", c.name, what, c.err, types(skipped))
		case <-deadline:
			c.t.Fatalf("%s: no %s within %v (skipped %v)", c.name, what, waitLimit, types(skipped))
		}
	}
}

func types(fs []frame) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Type+":"+string(f.Payload))
	}
	return out
}

// reply waits for the reply carrying pid.
func (c *wsClient) reply(pid string) frame {
	c.t.Helper()
	return c.await("reply "+pid, func(f frame) bool { return f.PID == pid && !isEvent(f.Type) })
}

// call sends a frame and returns its reply.
func (c *wsClient) call(typ string, payload any) frame {
	c.t.Helper()
	return c.reply(c.send(typ, payload))
}

// event waits for an event of typ for which ok holds (ok may be nil).
func (c *wsClient) event(typ string, ok func(frame) bool) frame {
	c.t.Helper()
	return c.await("event "+typ, func(f frame) bool { return f.Type == typ && (ok == nil || ok(f)) })
}

// sawBefore makes a round trip, then reports whether an event of typ (matching ok) has
// arrived before the reply: the way to check that something did not happen without a
// timed wait. Frames other than the reply stay queued.
func (c *wsClient) sawBefore(typ string, ok func(frame) bool) bool {
	c.t.Helper()
	pid := c.send("GET_MY_PROFILE", nil)
	saw := false
	match := func(f frame) bool { return f.Type == typ && (ok == nil || ok(f)) }
	for _, f := range c.kept {
		saw = saw || match(f)
	}
	for {
		var f frame
		select {
		case f = <-c.in:
		case <-c.closed:
			c.t.Fatalf("%s: closed during a round trip: %v", c.name, c.err)
		case <-time.After(waitLimit):
			c.t.Fatalf("%s: no reply %s within %v", c.name, pid, waitLimit)
		}
		if f.PID == pid && !isEvent(f.Type) {
			return saw
		}
		saw = saw || match(f)
		c.kept = append(c.kept, f)
	}
}

// closeCode waits for the server to close the connection and returns its close code and
// reason.
func (c *wsClient) closeCode() (int, string) {
	c.t.Helper()
	for {
		select {
		case <-c.in:
		case <-c.closed:
			var ce *websocket.CloseError
			if errors.As(c.err, &ce) {
				return ce.Code, ce.Text
			}
			c.t.Fatalf("%s: closed without a close frame: %v", c.name, c.err)
		case <-time.After(waitLimit):
			c.t.Fatalf("%s: not closed within %v", c.name, waitLimit)
		}
	}
}

func isEvent(typ string) bool {
	switch typ {
	case "NEW_CHAT_MESSAGE", "MESSAGE_STATUS_UPDATE", "TYPING_INDICATOR", "PRESENCE_EVENT", "NEW_NOTIFICATION":
		return true
	}
	return false
}

// refusal is a handshake refused before the upgrade.
type refusal struct {
	Status      int
	ContentType string
	Code        int
	Message     string
}

func handshake(t *testing.T, url string, h http.Header) (*websocket.Conn, refusal) {
	t.Helper()
	ws, res, err := websocket.DefaultDialer.Dial(url, h)
	if err == nil {
		t.Cleanup(func() { ws.Close() })
		return ws, refusal{Status: http.StatusSwitchingProtocols}
	}
	if res == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer res.Body.Close()
	var body struct {
		Code    int
		Message string
	}
	_ = json.NewDecoder(res.Body).Decode(&body)
	return nil, refusal{Status: res.StatusCode, ContentType: strings.Split(res.Header.Get("Content-Type"), ";")[0], Code: body.Code, Message: body.Message}
}

// startBenchSystem is startEdgeSystem for benchmarks.
func startBenchSystem(b *testing.B, tune func(*edge.Config)) *systemtest.System {
	b.Helper()
	return systemtest.Start(b, systemtest.Options{EdgeConfig: func(c *edge.Config) {
		c.PresenceGrace = 50 * time.Millisecond
		if tune != nil {
			tune(c)
		}
	}})
}
