package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/charla/charla/shared/waittest"
)

// testUser is the UserData of the tests.
type testUser struct{ Name string }

// recorder collects what the callbacks saw.
type recorder struct {
	mu           sync.Mutex
	messages     []string
	rateLimited  []string
	disconnected []error
	discCh       chan error
}

func newRecorder() *recorder { return &recorder{discCh: make(chan error, 1024)} }

func (r *recorder) disconnects() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.disconnected)
}

// authByQuery authenticates ?user=ID; ?deny=403 answers an *HTTPError.
func authByQuery(r *http.Request) (int64, testUser, error) {
	if d := r.URL.Query().Get("deny"); d != "" {
		status, _ := strconv.Atoi(d)
		return 0, testUser{}, &HTTPError{Status: status, Message: "denied"}
	}
	id, err := strconv.ParseInt(r.URL.Query().Get("user"), 10, 64)
	if err != nil {
		return 0, testUser{}, errors.New("no user")
	}
	return id, testUser{Name: "u" + strconv.FormatInt(id, 10)}, nil
}

// echoCallbacks replies "echo:<msg>" to every message and records everything.
func echoCallbacks(rec *recorder) Callbacks[testUser] {
	return Callbacks[testUser]{
		AuthenticateAndGetUserData: authByQuery,
		ProcessClientMessage: func(c *Connection[testUser], msg []byte) {
			rec.mu.Lock()
			rec.messages = append(rec.messages, string(msg))
			rec.mu.Unlock()
			_ = c.Send(append([]byte("echo:"), msg...))
		},
		OnRateLimited: func(c *Connection[testUser], msg []byte) {
			rec.mu.Lock()
			rec.rateLimited = append(rec.rateLimited, string(msg))
			rec.mu.Unlock()
			_ = c.SendErrorNotification("rl", 429, "rate limited")
		},
		OnDisconnect: func(c *Connection[testUser], err error) {
			rec.mu.Lock()
			rec.disconnected = append(rec.disconnected, err)
			rec.mu.Unlock()
			rec.discCh <- err
		},
	}
}

type testServer struct {
	m   *ConnectionManager[testUser]
	srv *httptest.Server
	url string // ws://host/ws
}

// newTestServer serves a manager with cfg. In tests (not benchmarks, which
// measure the defaults), unless cfg sets a ParkAfter other than the default,
// connections park after a millisecond without a message, so every test also
// runs through parking and waking (park.go).
func newTestServer(tb testing.TB, cfg Config, cb Callbacks[testUser]) *testServer {
	tb.Helper()
	if _, bench := tb.(*testing.B); !bench && (cfg.ParkAfter == 0 || cfg.ParkAfter == DefaultConfig().ParkAfter) {
		cfg.ParkAfter = time.Millisecond
	}
	m := NewConnectionManager(cfg, cb, nil)
	mux := http.NewServeMux()
	mux.Handle("/ws", m)
	srv := httptest.NewServer(mux)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return &testServer{m: m, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}
}

func (ts *testServer) dial(tb testing.TB, user int64) *websocket.Conn {
	tb.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(ts.url+"?user="+strconv.FormatInt(user, 10), nil)
	if err != nil {
		tb.Fatalf("dial user %d: %v (resp %v)", user, err, resp)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func readText(tb testing.TB, c *websocket.Conn) string {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	mt, b, err := c.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	if mt != websocket.TextMessage {
		tb.Fatalf("message type: got %d, want text", mt)
	}
	return string(b)
}

// answerPings makes c answer the server's pings with pongs, as browsers do, and
// reads (and drops) everything else until c fails. The channel gets one value per ping.
func answerPings(c *websocket.Conn) <-chan struct{} {
	pings := make(chan struct{}, 100)
	c.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return pings
}

// expectClose reads until the connection fails and checks the close code.
func expectClose(tb testing.TB, c *websocket.Conn, code int) {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			tb.Fatalf("read error: got %v, want close %d", err, code)
		}
		if ce.Code != code {
			tb.Fatalf("close code: got %d (%q), want %d", ce.Code, ce.Text, code)
		}
		return
	}
}

func TestEchoRegistryAndFanOut(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	ts := newTestServer(t, DefaultConfig(), echoCallbacks(rec))

	a1 := ts.dial(t, 1)
	a2 := ts.dial(t, 1)
	b := ts.dial(t, 2)
	waittest.Until(t, "3 connections", func() bool { return ts.m.GetActiveConnectionsCount() == 3 })

	if got := len(ts.m.Connections(1)); got != 2 {
		t.Fatalf("Connections(1): got %d, want 2", got)
	}
	if !ts.m.isUserOnline(2) || ts.m.isUserOnline(3) {
		t.Fatalf("IsUserOnline(2), (3): got %v, %v, want true, false", ts.m.isUserOnline(2), ts.m.isUserOnline(3))
	}
	c, ok := ts.m.oneConnection(2)
	if !ok || c.ID != 2 || c.UserData.Name != "u2" {
		t.Fatalf("GetConnection(2): got %+v, %v", c, ok)
	}

	// Replies go to the sender only, in order.
	for i := range 20 {
		if err := a1.WriteMessage(websocket.TextMessage, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		if got, want := readText(t, a1), "echo:"+strconv.Itoa(i); got != want {
			t.Fatalf("reply %d: got %q, want %q", i, got, want)
		}
	}

	// Fan-out to every connection of a user, minus the excluded one.
	conns := ts.m.Connections(1)
	if got := ts.m.sendToUser(1, []byte("all"), ""); got != 2 {
		t.Fatalf("SendMessageToUser all: got %d, want 2", got)
	}
	if got := ts.m.sendToUser(1, []byte("others"), conns[0].ConnID()); got != 1 {
		t.Fatalf("SendMessageToUser excluding one: got %d, want 1", got)
	}
	if got := ts.m.sendToUser(99, []byte("nobody"), ""); got != 0 {
		t.Fatalf("SendMessageToUser offline: got %d, want 0", got)
	}
	got := []string{readText(t, a1), readText(t, a2)}
	if got[0] != "all" || got[1] != "all" {
		t.Fatalf("fan-out: got %q, want all, all", got)
	}
	// Exactly one of a1/a2 gets "others": send a marker to both to find out which.
	ts.m.sendToUser(1, []byte("end"), "")
	var others int
	for _, c := range []*websocket.Conn{a1, a2} {
		for msg := readText(t, c); msg != "end"; msg = readText(t, c) {
			if msg == "others" {
				others++
			}
		}
	}
	if others != 1 {
		t.Fatalf("excluded fan-out: got %d receivers, want 1", others)
	}

	n := 0
	ts.m.ForEach(func(*Connection[testUser]) { n++ })
	if n != 3 {
		t.Fatalf("ForEach: got %d, want 3", n)
	}

	_ = b.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if err := <-rec.discCh; err != nil {
		t.Fatalf("OnDisconnect after a normal close: got %v, want nil", err)
	}
	waittest.Until(t, "user 2 offline", func() bool { return !ts.m.isUserOnline(2) })
	if got := ts.m.GetActiveConnectionsCount(); got != 2 {
		t.Fatalf("count after one close: got %d, want 2", got)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		allowed []string
		origin  string // "SELF" = the server's own origin
		query   string
		status  int
		message string
	}{
		{"no origin is allowed", nil, "", "user=1", 101, ""},
		{"same origin", nil, "SELF", "user=1", 101, ""},
		{"foreign origin", nil, "http://evil.example", "user=1", 403, "origin not allowed"},
		{"listed origin", []string{"https://app.example"}, "https://app.example", "user=1", 101, ""},
		{"listed origin, case", []string{"https://App.Example"}, "https://app.example", "user=1", 101, ""},
		{"unlisted origin", []string{"https://app.example"}, "https://other.example", "user=1", 403, "origin not allowed"},
		{"same origin not implied by a list", []string{"https://app.example"}, "SELF", "user=1", 403, "origin not allowed"},
		{"wildcard", []string{"*"}, "http://any.example", "user=1", 101, ""},
		{"origin checked before auth", nil, "http://evil.example", "", 403, "origin not allowed"},
		{"auth failure", nil, "", "", 401, "unauthorized"},
		{"auth HTTPError", nil, "", "deny=403", 403, "denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.AllowedOrigins = tt.allowed
			var authCalls sync.Map
			cb := echoCallbacks(newRecorder())
			cb.AuthenticateAndGetUserData = func(r *http.Request) (int64, testUser, error) {
				authCalls.Store(1, true)
				return authByQuery(r)
			}
			ts := newTestServer(t, cfg, cb)
			h := http.Header{}
			switch tt.origin {
			case "":
			case "SELF":
				h.Set("Origin", ts.srv.URL)
			default:
				h.Set("Origin", tt.origin)
			}
			c, resp, err := websocket.DefaultDialer.Dial(ts.url+"?"+tt.query, h)
			if tt.status == 101 {
				if err != nil {
					t.Fatalf("dial: got %v, want success", err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("dial: got success, want %d", tt.status)
			}
			if resp == nil {
				t.Fatalf("dial: got %v without response, want %d", err, tt.status)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status: got %d, want %d", resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type: got %q, want application/json", ct)
			}
			var body struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if body.Code != tt.status || body.Message != tt.message {
				t.Fatalf("body: got %+v, want {%d %q}", body, tt.status, tt.message)
			}
			if _, called := authCalls.Load(1); tt.status == 403 && tt.message == "origin not allowed" && called {
				t.Fatalf("auth called after an origin refusal")
			}
		})
	}
}

func TestProtocolViolationsClose(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("a", 16385)
	tests := []struct {
		name string
		send func(c *websocket.Conn) error
		code int // 0: stays open and echoes
	}{
		{"max size is accepted", func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte(big[:16384]))
		}, 0},
		{"one byte over", func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte(big))
		}, websocket.CloseMessageTooBig},
		{"over after reassembly of fragments", func(c *websocket.Conn) error {
			w, err := c.NextWriter(websocket.TextMessage)
			if err != nil {
				return err
			}
			for range 17 { // 17 fragments of 1000 bytes (the dialer's write buffer is 1 KiB)
				if _, err := w.Write([]byte(big[:1000])); err != nil {
					return err
				}
			}
			return w.Close()
		}, websocket.CloseMessageTooBig},
		{"binary", func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.BinaryMessage, []byte("{}"))
		}, websocket.CloseUnsupportedData},
		{"invalid UTF-8", func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte("{\"x\":\"\xff\xfe\"}"))
		}, websocket.CloseInvalidFramePayloadData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder()
			ts := newTestServer(t, DefaultConfig(), echoCallbacks(rec))
			d := websocket.Dialer{WriteBufferSize: 1024}
			c, _, err := d.Dial(ts.url+"?user=7", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := tt.send(c); err != nil {
				t.Fatalf("send: %v", err)
			}
			if tt.code == 0 {
				if got := readText(t, c); len(got) != len("echo:")+16384 {
					t.Fatalf("echo length: got %d", len(got))
				}
				return
			}
			expectClose(t, c, tt.code)
			err = <-rec.discCh
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != tt.code {
				t.Fatalf("OnDisconnect: got %v, want CloseError %d", err, tt.code)
			}
			if n := len(rec.messages); n != 0 {
				t.Fatalf("processed messages: got %d, want 0", n)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	cfg := DefaultConfig()
	cfg.RateLimit = 0.0001 // no refill during the test
	cfg.RateBurst = 3
	cfg.MaxRateErrors = 4
	ts := newTestServer(t, cfg, echoCallbacks(rec))
	c := ts.dial(t, 1)

	// Control frames do not count.
	for range 10 {
		if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// Malformed messages count like any other.
	for _, m := range []string{"ok1", "not json {", "ok3"} {
		_ = c.WriteMessage(websocket.TextMessage, []byte(m))
		if got, want := readText(t, c), "echo:"+m; got != want {
			t.Fatalf("within burst: got %q, want %q", got, want)
		}
	}
	for i := range 4 {
		_ = c.WriteMessage(websocket.TextMessage, []byte("over"+strconv.Itoa(i)))
		if got, want := readText(t, c), `{"pid":"rl","type":"ERROR_NOTIFICATION","payload":{"code":429,"message":"rate limited"}}`; got != want {
			t.Fatalf("rate error %d: got %q, want %q", i, got, want)
		}
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte("one too many"))
	expectClose(t, c, websocket.ClosePolicyViolation)
	<-rec.discCh
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := len(rec.rateLimited); got != 4 {
		t.Fatalf("OnRateLimited calls: got %d, want 4", got)
	}
	if got := len(rec.messages); got != 3 {
		t.Fatalf("processed: got %d, want 3", got)
	}
}

func TestRateLimitDefaultReply(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	cfg := DefaultConfig()
	cfg.RateLimit = 0.0001
	cfg.RateBurst = 1
	cb := echoCallbacks(rec)
	cb.OnRateLimited = nil
	cb.GeneratePID = func() string { return "gen" }
	ts := newTestServer(t, cfg, cb)
	c := ts.dial(t, 1)
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{}`))
	readText(t, c)
	for _, tt := range []struct{ msg, pid string }{
		{`{"type":"X","pid":"c-1"}`, "c-1"},
		{`{"pid":17}`, "gen"},
		{`garbage`, "gen"},
		{`{"pid":"` + strings.Repeat("p", 65) + `"}`, "gen"},
	} {
		_ = c.WriteMessage(websocket.TextMessage, []byte(tt.msg))
		want := `{"pid":"` + tt.pid + `","type":"ERROR_NOTIFICATION","payload":{"code":429,"message":"rate limit exceeded"}}`
		if got := readText(t, c); got != want {
			t.Fatalf("reply to %s: got %s, want %s", tt.msg, got, want)
		}
	}
}

func TestRateErrorWindowSlides(t *testing.T) {
	t.Parallel()
	m := NewConnectionManager(Config{MaxRateErrors: 3, RateErrorWindow: time.Minute}, Callbacks[testUser]{}, nil)
	c := &Connection[testUser]{m: m}
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, false}, {10 * time.Second, false}, {20 * time.Second, false},
		{30 * time.Second, true},  // 4th within 60 s of the 1st
		{61 * time.Second, false}, // the 1st has left the window
		{65 * time.Second, true},  // 10 s, 20 s, 61 s are still in
		{81 * time.Second, false}, // 10 s and 20 s left
	}
	for _, s := range steps {
		if got := c.rateErrorLimitReached(s.at); got != s.want {
			t.Fatalf("error at %v: got %v, want %v", s.at, got, s.want)
		}
	}
}

func TestSlowConsumerDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	cfg := DefaultConfig()
	cfg.SendChannelBuffer = 8
	ts := newTestServer(t, cfg, echoCallbacks(rec))
	slow := ts.dial(t, 1) // never reads
	fast := ts.dial(t, 2)
	waittest.Until(t, "2 connections", func() bool { return ts.m.GetActiveConnectionsCount() == 2 })

	chunk := []byte(strings.Repeat("x", 64<<10))
	sent := 0
	for ts.m.sendToUser(1, chunk, "") == 1 {
		sent++
		if sent > 100000 {
			t.Fatal("the slow consumer was never detected")
		}
	}
	// The slow connection is closing, but its write pump is still stuck in a
	// write to the full socket (WriteWait is 15 s): it stays registered until
	// then. Delivery to the other user goes on meanwhile.
	for i := range 200 {
		if got := ts.m.sendToUser(2, []byte("m"+strconv.Itoa(i)), ""); got != 1 {
			t.Fatalf("send %d to the fast user: got %d, want 1", i, got)
		}
		if got, want := readText(t, fast), "m"+strconv.Itoa(i); got != want {
			t.Fatalf("fast user: got %q, want %q", got, want)
		}
	}
	if got := rec.disconnects(); got != 0 {
		t.Fatalf("disconnects while the fast user was served: got %d, want 0 (the slow socket should still be stuck)", got)
	}
	if err := ts.m.Connections(1)[0].Send([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send to the closing connection: got %v, want ErrClosed", err)
	}
	slow.Close() // the stuck write fails now
	err := <-rec.discCh
	if !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("OnDisconnect: got %v, want ErrSlowConsumer", err)
	}
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("OnDisconnect: got %v, want CloseError 1008", err)
	}
}

func TestSlowConsumerGetsCloseFrame(t *testing.T) {
	t.Parallel()
	// When the queue fills faster than a healthy writer drains it, the
	// client still gets a readable 1008.
	rec := newRecorder()
	cfg := DefaultConfig()
	cfg.SendChannelBuffer = 4
	cb := echoCallbacks(rec)
	cb.ProcessClientMessage = func(c *Connection[testUser], msg []byte) {
		for {
			if err := c.Send(msg); err != nil {
				return
			}
		}
	}
	ts := newTestServer(t, cfg, cb)
	c := ts.dial(t, 1)
	_ = c.WriteMessage(websocket.TextMessage, []byte("flood"))
	expectClose(t, c, websocket.ClosePolicyViolation)
	if err := <-rec.discCh; !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("OnDisconnect: got %v, want ErrSlowConsumer", err)
	}
}

func TestSendWithCallbackAndClose(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	ts := newTestServer(t, DefaultConfig(), echoCallbacks(rec))
	c := ts.dial(t, 1)
	waittest.Until(t, "registration", func() bool { return ts.m.isUserOnline(1) })
	conn, _ := ts.m.oneConnection(1)

	written := make(chan struct{})
	if err := conn.SendWithCallback([]byte("receipt"), func() { close(written) }); err != nil {
		t.Fatal(err)
	}
	<-written
	if got := readText(t, c); got != "receipt" {
		t.Fatalf("got %q, want receipt", got)
	}
	if err := conn.SendJSON(map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, c); got != `{"a":1}` {
		t.Fatalf("SendJSON: got %q", got)
	}
	// Queued messages are flushed before the close frame.
	_ = conn.Send([]byte("last words"))
	conn.Close(4001, "session revoked")
	conn.Close(1000, "ignored: only the first close counts")
	if got := readText(t, c); got != "last words" {
		t.Fatalf("before close: got %q, want last words", got)
	}
	expectClose(t, c, 4001)
	if err := conn.Send([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: got %v, want ErrClosed", err)
	}
	<-conn.Context().Done()
	err := <-rec.discCh
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "session revoked" {
		t.Fatalf("OnDisconnect: got %v, want CloseError 4001", err)
	}
}

// TestCloseFlushesPastTheParkingDeadline: a reader waiting to park sets a short
// read deadline of its own; when the connection starts closing while a long flush
// is still being written, that deadline must not end the connection before the
// queued message and the close frame are out. The client reads nothing for a
// while, so the flush outlasts ParkAfter.
func TestCloseFlushesPastTheParkingDeadline(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	cb := echoCallbacks(rec)
	big := strings.Repeat("x", 8<<20) // far more than the socket buffers hold
	cb.ProcessClientMessage = func(c *Connection[testUser], _ []byte) {
		// Close just after the frame, while the reader waits to park under its
		// short deadline.
		go func() {
			time.Sleep(5 * time.Millisecond)
			_ = c.Send([]byte(big))
			c.Close(4001, "session revoked")
		}()
	}
	cfg := DefaultConfig()
	cfg.ParkAfter = 50 * time.Millisecond
	ts := newTestServer(t, cfg, cb)
	c := ts.dial(t, 1)
	_ = c.WriteMessage(websocket.TextMessage, []byte("close me"))
	time.Sleep(200 * time.Millisecond) // the reader's short deadline passes meanwhile
	if got := readText(t, c); len(got) != len(big) {
		t.Fatalf("before close: got %d bytes, want %d", len(got), len(big))
	}
	expectClose(t, c, 4001)
	<-rec.discCh
}

// TestOnConnectErrorCloses1011: an OnConnect that fails or panics closes its own
// connection with 1011; the others go on.
func TestOnConnectErrorCloses1011(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	cb := echoCallbacks(rec)
	cb.OnConnect = func(c *Connection[testUser]) error {
		if !c.Manager().isUserOnline(c.ID) {
			return errors.New("not registered before OnConnect")
		}
		if c.ID == 13 {
			return errors.New("unlucky")
		}
		if c.ID == 14 {
			panic("OnConnect bug") // OnConnect runs on a goroutine of its own: recovered there
		}
		return nil
	}
	ts := newTestServer(t, DefaultConfig(), cb)
	ok := ts.dial(t, 1)
	_ = ok.WriteMessage(websocket.TextMessage, []byte("hi"))
	if got := readText(t, ok); got != "echo:hi" {
		t.Fatalf("got %q", got)
	}
	bad := ts.dial(t, 13)
	expectClose(t, bad, websocket.CloseInternalServerErr)
	panicky := ts.dial(t, 14)
	expectClose(t, panicky, websocket.CloseInternalServerErr)
	_ = ok.WriteMessage(websocket.TextMessage, []byte("still here"))
	if got := readText(t, ok); got != "echo:still here" {
		t.Fatalf("after another connection's OnConnect panicked: got %q", got)
	}
}

func TestPingPong(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	cfg := DefaultConfig()
	cfg.PingPeriod = 100 * time.Millisecond
	cfg.PongWait = time.Second
	ts := newTestServer(t, cfg, echoCallbacks(rec))

	t.Run("answering client stays", func(t *testing.T) {
		pings := answerPings(ts.dial(t, 1))
		// 15 pings span 1.5 PongWait: only the pongs kept it alive.
		for range 15 {
			<-pings
		}
		if !ts.m.isUserOnline(1) {
			t.Fatal("a client that answers pings was dropped")
		}
	})
	t.Run("silent client is dropped", func(t *testing.T) {
		c := ts.dial(t, 2)
		c.SetPingHandler(func(string) error { return nil }) // no pong
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				break
			}
		}
		waittest.Until(t, "user 2 dropped", func() bool { return !ts.m.isUserOnline(2) })
	})
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	m := NewConnectionManager(DefaultConfig(), echoCallbacks(rec), nil)
	srv := httptest.NewServer(m)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	var clients []*websocket.Conn
	for i := range 5 {
		c, _, err := websocket.DefaultDialer.Dial(url+"?user="+strconv.Itoa(i%2), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	waittest.Until(t, "5 connections", func() bool { return m.GetActiveConnectionsCount() == 5 })

	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { expectClose(t, c, websocket.CloseGoingAway) })
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	if got := rec.disconnects(); got != 5 {
		t.Fatalf("OnDisconnect calls when Shutdown returned: got %d, want 5", got)
	}
	if got := m.GetActiveConnectionsCount(); got != 0 {
		t.Fatalf("count: got %d, want 0", got)
	}
	_, resp, err := websocket.DefaultDialer.Dial(url+"?user=1", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("handshake after Shutdown: got %v, %v, want 503", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if got, want := string(body), `{"code":503,"message":"server shutting down"}`; got != want {
		t.Fatalf("body: got %s, want %s", got, want)
	}
}

func TestShutdownContextExpires(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	m := NewConnectionManager(DefaultConfig(), echoCallbacks(rec), nil)
	srv := httptest.NewServer(m)
	defer srv.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"?user=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waittest.Until(t, "registration", func() bool { return m.isUserOnline(1) })
	// The client never reads, so it never answers the close frame: the drain
	// waits for closeGrace, longer than ctx allows.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: got %v, want DeadlineExceeded", err)
	}
	// The sockets were dropped: everything still ends.
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if got := rec.disconnects(); got != 1 {
		t.Fatalf("OnDisconnect calls: got %d, want 1", got)
	}
}

func TestConnIDs(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, DefaultConfig(), echoCallbacks(newRecorder()))
	for range 5 {
		ts.dial(t, 1)
	}
	waittest.Until(t, "5 connections", func() bool { return ts.m.GetActiveConnectionsCount() == 5 })
	seen := map[string]bool{}
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	for _, c := range ts.m.Connections(1) {
		if !valid.MatchString(c.ConnID()) || seen[c.ConnID()] {
			t.Fatalf("ConnID %q: invalid or duplicate", c.ConnID())
		}
		seen[c.ConnID()] = true
	}
}

// TestNoLeaks runs many connect/disconnect cycles, closed by either side,
// with deliveries racing the disconnects, and checks that goroutines and
// registry entries return to their baseline. It does not run in parallel:
// other tests' goroutines would blur the count.
func TestNoLeaks(t *testing.T) {
	rec := newRecorder()
	ts := newTestServer(t, DefaultConfig(), echoCallbacks(rec))
	baseline := runtime.NumGoroutine()

	stop := make(chan struct{})
	var sender sync.WaitGroup
	sender.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for u := range int64(4) {
				ts.m.sendToUser(u, []byte("noise"), "")
			}
			runtime.Gosched()
		}
	})

	const workers, cycles = 4, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range cycles {
				user := w % 2 // two workers per user: the registry sees concurrent adds and removes of one key
				c, _, err := websocket.DefaultDialer.Dial(ts.url+"?user="+strconv.Itoa(user), nil)
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				_ = c.WriteMessage(websocket.TextMessage, []byte("hi"))
				switch i % 3 {
				case 0: // clean client close
					_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							break
						}
					}
				case 1: // abrupt client close
				case 2: // server close
					for _, sc := range ts.m.Connections(int64(user)) {
						sc.Close(websocket.CloseNormalClosure, "bye") // may close the other worker's too
					}
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							break
						}
					}
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	close(stop)
	sender.Wait()

	waittest.Until(t, "all connections unregistered", func() bool { return ts.m.GetActiveConnectionsCount() == 0 })
	waittest.Until(t, fmt.Sprintf("goroutines back to %d", baseline), func() bool { return runtime.NumGoroutine() <= baseline })
	if got, want := rec.disconnects(), workers*cycles; got != want {
		t.Fatalf("OnDisconnect calls: got %d, want %d", got, want)
	}
	for u := range int64(workers) {
		if ts.m.isUserOnline(u) || len(ts.m.Connections(u)) != 0 {
			t.Fatalf("user %d still registered", u)
		}
	}
}

func TestCallbackPanicClosesOnlyItsConnection(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	cb := echoCallbacks(rec)
	echo := cb.ProcessClientMessage
	cb.ProcessClientMessage = func(c *Connection[testUser], msg []byte) {
		if string(msg) == "boom" {
			panic("handler bug")
		}
		echo(c, msg)
	}
	ts := newTestServer(t, DefaultConfig(), cb)
	bad, good := ts.dial(t, 1), ts.dial(t, 2)
	_ = bad.WriteMessage(websocket.TextMessage, []byte("boom"))
	expectClose(t, bad, websocket.CloseInternalServerErr)
	_ = good.WriteMessage(websocket.TextMessage, []byte("still here"))
	if got := readText(t, good); got != "echo:still here" {
		t.Fatalf("other connection: got %q", got)
	}
}

// TestShutdownRacingHandshakes dials while Shutdown runs: every dial either
// gets 503 or a connection that is then closed with 1001, and every accepted
// connection is disconnected before Shutdown returns.
func TestShutdownRacingHandshakes(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	m := NewConnectionManager(DefaultConfig(), echoCallbacks(rec), nil)
	srv := httptest.NewServer(m)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "?user=1"

	var accepted, refused atomicCounter
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			<-start
			for range 10 {
				c, resp, err := websocket.DefaultDialer.Dial(url, nil)
				if err != nil {
					if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
						t.Errorf("dial: got %v, %v, want success or 503", resp, err)
					}
					refused.add()
					continue
				}
				accepted.add()
				expectCloseAsync(t, c, websocket.CloseGoingAway)
				c.Close()
			}
		})
	}
	close(start)
	time.Sleep(time.Millisecond) // let some handshakes through first; correctness does not depend on it
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	disconnectsAtReturn := rec.disconnects()
	wg.Wait()
	if got := m.GetActiveConnectionsCount(); got != 0 {
		t.Fatalf("count after Shutdown: got %d, want 0", got)
	}
	if got, want := disconnectsAtReturn, accepted.get(); got != want {
		t.Fatalf("OnDisconnect calls when Shutdown returned: got %d, want %d (accepted)", got, want)
	}
	t.Logf("accepted %d, refused %d", accepted.get(), refused.get())
}

type atomicCounter struct {
	mu sync.Mutex
	n  int
}

func (a *atomicCounter) add() { a.mu.Lock(); a.n++; a.mu.Unlock() }
func (a *atomicCounter) get() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// expectCloseAsync is expectClose for goroutines other than the test's: it
// reports with Errorf instead of Fatalf.
func expectCloseAsync(t *testing.T, c *websocket.Conn, code int) {
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, code) {
			t.Errorf("read: got %v, want close %d", err, code)
		}
		return
	}
}

// TestRefusalLoggedOnceAndCounted: each refused handshake is one log line (with its
// reason and cause, never the token) and one OnHandshakeRefused call with its reason.
func TestRefusalLoggedOnceAndCounted(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-t0ken"
	tests := []struct {
		name       string
		origin     string
		query      string
		wantReason string
		wantStatus int
		wantLog    string // a text the log line holds; "" means no line
	}{
		{"origin", "http://evil.example", "user=1&token=" + secret, ReasonOrigin, 403, "reason=origin"},
		{"auth error", "", "token=" + secret, ReasonUnauthorized, 401, "err=\"no user\""},
		{"reason and cause", "", "deny=why&token=" + secret, "why_not", 401, "err=\"profile down\""},
		{"not an upgrade", "", "user=1&token=" + secret, ReasonBadUpgrade, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu      sync.Mutex
				logs    strings.Builder
				reasons []string
			)
			log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				return logs.Write(p)
			}), &slog.HandlerOptions{Level: slog.LevelInfo}))
			cb := echoCallbacks(newRecorder())
			cb.AuthenticateAndGetUserData = func(r *http.Request) (int64, testUser, error) {
				if r.URL.Query().Get("deny") == "why" {
					return 0, testUser{}, &HTTPError{Status: 401, Message: "no", Reason: "why_not", Err: errors.New("profile down")}
				}
				return authByQuery(r)
			}
			cb.OnHandshakeRefused = func(_ *http.Request, status int, reason string) {
				mu.Lock()
				defer mu.Unlock()
				reasons = append(reasons, reason)
			}
			m := NewConnectionManager(DefaultConfig(), cb, log)
			r := httptest.NewRequest(http.MethodGet, "/ws?"+tt.query, nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			rw := httptest.NewRecorder()
			m.ServeHTTP(rw, r)
			if rw.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rw.Code, tt.wantStatus)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(reasons) != 1 || reasons[0] != tt.wantReason {
				t.Errorf("OnHandshakeRefused reasons: got %v, want [%s]", reasons, tt.wantReason)
			}
			out := logs.String()
			if n := strings.Count(out, "handshake refused"); (tt.wantLog != "" && n != 1) || (tt.wantLog == "" && n != 0) {
				t.Errorf("refusal log lines: got %d in %q", n, out)
			}
			if !strings.Contains(out, tt.wantLog) {
				t.Errorf("log: got %q, want it to hold %q", out, tt.wantLog)
			}
			if strings.Contains(out, secret) {
				t.Errorf("log leaks the token: %q", out)
			}
		})
	}
}

// TestRefusedWhileShuttingDown: a handshake after Shutdown is refused with the
// shutting_down reason.
func TestRefusedWhileShuttingDown(t *testing.T) {
	t.Parallel()
	var got []string
	cb := echoCallbacks(newRecorder())
	cb.OnHandshakeRefused = func(_ *http.Request, _ int, reason string) { got = append(got, reason) }
	m := NewConnectionManager(DefaultConfig(), cb, nil)
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	rw := httptest.NewRecorder()
	m.ServeHTTP(rw, httptest.NewRequest(http.MethodGet, "/ws?user=1", nil))
	if rw.Code != http.StatusServiceUnavailable || len(got) != 1 || got[0] != ReasonShuttingDown {
		t.Errorf("got %d %v, want 503 [%s]", rw.Code, got, ReasonShuttingDown)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
