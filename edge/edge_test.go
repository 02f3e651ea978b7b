package edge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

const waitLimit = 10 * time.Second

type testEdge struct {
	e   *Edge
	f   *fakes
	url string
}

func startEdge(tb testing.TB, tune func(*Config)) *testEdge {
	tb.Helper()
	return startEdgeWith(tb, tune, nil)
}

// startEdgeWith is startEdge with prep, which may change the fakes and the edge before
// it runs.
func startEdgeWith(tb testing.TB, tune func(*Config), prep func(*fakes, *Edge)) *testEdge {
	tb.Helper()
	f, clients := newFakes(tb)
	cfg := Config{PresenceGrace: time.Millisecond}
	if tune != nil {
		tune(&cfg)
	}
	e, err := New(cfg, clients, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if prep != nil {
		prep(f, e)
	}
	srv := httptest.NewServer(e.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.Run(ctx); close(done) }()
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = e.Shutdown(sctx)
		cancel()
		<-done
		srv.Close()
	})
	<-e.reporter.Registered()
	return &testEdge{e: e, f: f, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}
}

type client struct {
	tb     testing.TB
	ws     *websocket.Conn
	connID string
	in     chan []byte
	done   chan struct{}
	err    error
	// connected is the CONNECTED frame's payload.
	connected json.RawMessage
}

// dial connects as user n and learns the connection id the edge reported to presence.
func (te *testEdge) dial(tb testing.TB, n int64) *client {
	tb.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(te.url+"?token=tok-"+strconv.FormatInt(n, 10), nil)
	if err != nil {
		tb.Fatal(err)
	}
	c := &client{tb: tb, ws: ws, in: make(chan []byte, 100), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				c.err = err
				return
			}
			c.in <- data
		}
	}()
	tb.Cleanup(func() { ws.Close() })
	select {
	case c.connID = <-te.f.presence.connected:
	case <-time.After(waitLimit):
		tb.Fatal("presence Connect not called")
	}
	f := c.next()
	if f.Type != "CONNECTED" || !strings.Contains(string(f.Payload), `"connectionId":"`+c.connID+`"`) {
		tb.Fatalf("first frame: %s %s, want CONNECTED naming the connection", f.Type, f.Payload)
	}
	c.connected = f.Payload
	return c
}

type serverFrame struct {
	PID     string          `json:"pid"`
	Type    string          `json:"type"`
	Seq     *uint64         `json:"seq"`
	Payload json.RawMessage `json:"payload"`
}

func (c *client) next() serverFrame {
	c.tb.Helper()
	select {
	case data := <-c.in:
		var f serverFrame
		if err := json.Unmarshal(data, &f); err != nil {
			c.tb.Fatalf("frame %s: %v", data, err)
		}
		return f
	case <-c.done:
		c.tb.Fatalf("closed: %v", c.err)
	case <-time.After(waitLimit):
		c.tb.Fatal("no frame")
	}
	return serverFrame{}
}

// roundTrip sends a frame and returns every frame up to and including its reply.
func (c *client) roundTrip(pid string) []serverFrame {
	c.tb.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"GET_CHAT_LIST","pid":"`+pid+`"}`)); err != nil {
		c.tb.Fatal(err)
	}
	var out []serverFrame
	for {
		f := c.next()
		out = append(out, f)
		if f.PID == pid {
			return out
		}
	}
}

func (c *client) closeCode() (int, string) {
	c.tb.Helper()
	for {
		select {
		case <-c.in:
		case <-c.done:
			var ce *websocket.CloseError
			if errors.As(c.err, &ce) {
				return ce.Code, ce.Text
			}
			c.tb.Fatalf("closed without a close frame: %v", c.err)
		case <-time.After(waitLimit):
			c.tb.Fatal("not closed")
		}
	}
}

func TestEventDelivery(t *testing.T) {
	t.Parallel()
	te := startEdge(t, nil)
	a1, a2, b := te.dial(t, 1), te.dial(t, 1), te.dial(t, 2)
	// User 1 sent message 77 to user 2 from a1.
	te.f.chatEvents <- &chatv1.StreamEventsResponse{
		UserIds: []int64{1, 2}, ExcludeConnectionId: a1.connID,
		Event: &chatv1.StreamEventsResponse_NewChatMessage{NewChatMessage: &chatv1.NewChatMessageEvent{
			FromUsername: "u1",
			Message:      &chatv1.ChatMessage{Id: 77, ChatId: 5, FromUserId: 1, ToUserId: 2, Text: "hola", Timestamp: 9, Status: chatv1.MessageStatus_MESSAGE_STATUS_SENT_TO_SERVER},
		}},
	}
	pids := map[string]bool{}
	for _, c := range []*client{b, a2} {
		f := c.next()
		if f.Type != "NEW_CHAT_MESSAGE" || !strings.Contains(string(f.Payload), `"id":"77"`) || !strings.Contains(string(f.Payload), `"fromUsername":"u1"`) {
			t.Errorf("got %s %s, want NEW_CHAT_MESSAGE 77", f.Type, f.Payload)
		}
		if f.PID == "" || pids[f.PID] {
			t.Errorf("pid %q: want a fresh one per connection", f.PID)
		}
		pids[f.PID] = true
	}
	// Only the recipient's write counts as delivery.
	<-te.f.deliverCh
	te.f.mu.Lock()
	got := te.f.delivered
	te.f.mu.Unlock()
	if len(got) != 1 || !slices.Equal(got[2], []int64{77}) {
		t.Errorf("MarkDelivered: got %v, want user 2: [77]", got)
	}
	for _, f := range a1.roundTrip("barrier") {
		if f.Type == "NEW_CHAT_MESSAGE" {
			t.Error("the excluded connection received the event")
		}
	}

	// A status update goes to every listed user's connections.
	te.f.chatEvents <- &chatv1.StreamEventsResponse{UserIds: []int64{1},
		Event: &chatv1.StreamEventsResponse_MessageStatusUpdate{MessageStatusUpdate: &chatv1.MessageStatusUpdateEvent{
			ChatId: 5, MessageIds: []int64{77}, Status: chatv1.MessageStatus_MESSAGE_STATUS_DELIVERED}}}
	for _, c := range []*client{a1, a2} {
		f := c.next()
		var p struct {
			ChatID     string   `json:"chatId"`
			MessageIDs []string `json:"messageIds"`
			Status     string   `json:"status"`
		}
		_ = json.Unmarshal(f.Payload, &p)
		if f.Type != "MESSAGE_STATUS_UPDATE" || p.ChatID != "5" || !slices.Equal(p.MessageIDs, []string{"77"}) || p.Status != "delivered" {
			t.Errorf("got %s %s, want MESSAGE_STATUS_UPDATE delivered [77]", f.Type, f.Payload)
		}
	}
}

// TestNoHandshakeBeforeTheStreamsAreUp: until every event stream has sent its subscribed
// marker, /ready says the stream is down and a handshake waits, then gets 503 before the
// upgrade; once the marker is in, handshakes are accepted and events reach them.
func TestNoHandshakeBeforeTheStreamsAreUp(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	te := startEdgeWith(t, nil, func(f *fakes, e *Edge) {
		f.holdMarker = hold
		e.startWait = 50 * time.Millisecond
	})
	// (The fakes do not implement /ready's probes: look at the streams only.)
	if down := te.e.streams.Down(); !slices.Contains(down, streamChat) {
		t.Errorf("streams down before the marker: got %v, want chat among them", down)
	}
	ws, res, err := websocket.DefaultDialer.Dial(te.url+"?token=tok-1", nil)
	if err == nil {
		ws.Close()
		t.Fatal("handshake accepted before the chat stream was up")
	}
	var body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if res != nil {
		_ = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
	}
	if res == nil || res.StatusCode != http.StatusServiceUnavailable || body.Code != 503 || body.Message != "server starting" {
		t.Fatalf("handshake before the marker: got %v %+v, want 503 server starting", res, body)
	}

	close(hold)
	<-te.e.streams.Started()
	if down := te.e.streams.Down(); len(down) != 0 {
		t.Errorf("streams down after the marker: got %v, want none", down)
	}
	c := te.dial(t, 1)
	te.f.chatEvents <- &chatv1.StreamEventsResponse{UserIds: []int64{1},
		Event: &chatv1.StreamEventsResponse_MessageStatusUpdate{MessageStatusUpdate: &chatv1.MessageStatusUpdateEvent{
			ChatId: 5, MessageIds: []int64{77}, Status: chatv1.MessageStatus_MESSAGE_STATUS_DELIVERED}}}
	if f := c.next(); f.Type != "MESSAGE_STATUS_UPDATE" {
		t.Errorf("got %s, want MESSAGE_STATUS_UPDATE", f.Type)
	}
}

// TestSessionEndedEventCloses4001: SESSION_ENDED closes the session's connections and
// drops its cached token, so the same token cannot open a new one from the cache.
func TestSessionEndedEventCloses4001(t *testing.T) {
	t.Parallel()
	te := startEdge(t, nil)
	c := te.dial(t, 3)
	te.f.profile.mu.Lock()
	te.f.profile.revoked[3] = true
	te.f.profile.mu.Unlock()
	te.f.profile.events <- &profilev1.StreamEventsResponse{UserIds: []int64{3},
		Event: &profilev1.StreamEventsResponse_SessionEnded{SessionEnded: &profilev1.SessionEndedEvent{SessionId: 3, State: profilev1.SessionState_SESSION_STATE_EXPIRED}}}
	if code, reason := c.closeCode(); code != 4001 || reason != "session expired" {
		t.Errorf("close: got %d %q, want 4001 \"session expired\"", code, reason)
	}
	ws, res, err := websocket.DefaultDialer.Dial(te.url+"?token=tok-3", nil)
	if err == nil {
		ws.Close()
		t.Fatal("a new handshake with the ended session's token was accepted (served from the cache)")
	}
	if res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("new handshake: got %v %v, want 401", res, err)
	}
}

func TestSessionSweepCloses4001(t *testing.T) {
	t.Parallel()
	te := startEdge(t, func(c *Config) { c.SessionCheckInterval = 20 * time.Millisecond })
	keep := te.dial(t, 4)
	c := te.dial(t, 5)
	te.f.profile.mu.Lock()
	te.f.profile.revoked[5] = true
	te.f.profile.mu.Unlock()
	if code, reason := c.closeCode(); code != 4001 || reason != "session revoked" {
		t.Errorf("close: got %d %q, want 4001 \"session revoked\"", code, reason)
	}
	keep.roundTrip("still-open")
}

func TestShutdownCloses1001(t *testing.T) {
	t.Parallel()
	te := startEdge(t, nil)
	c := te.dial(t, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := te.e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.closeCode(); code != websocket.CloseGoingAway {
		t.Errorf("close: got %d, want 1001", code)
	}
	te.f.presence.mu.Lock()
	left := len(te.f.presence.conns)
	te.f.presence.mu.Unlock()
	if left != 0 {
		t.Errorf("presence still holds %d connections after shutdown", left)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	te := startEdge(t, nil)
	te.dial(t, 7)
	rec := httptest.NewRecorder()
	te.e.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	var h map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &h)
	if rec.Code != 200 || h["status"] != "ok" || h["active_connections"] != float64(1) || h["timestamp"] == nil {
		t.Errorf("/health: got %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type: got %q", ct)
	}
}

// BenchmarkHandshake measures authenticated handshakes per second through the edge with
// in-memory fake services over loopback Connect: "cached" answers repeated tokens from the
// token cache; "uncached" resolves every token at the fake, concurrent handshakes sharing
// ResolveSessions calls.
// Each connection is also reported to the (fake) presence service.
func BenchmarkHandshake(b *testing.B) {
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			te := startEdge(b, func(c *Config) { c.AuthCacheTTL = bc.ttl })
			url := te.url + "?token=tok-1"
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ws, _, err := websocket.DefaultDialer.Dial(url, nil)
					if err != nil {
						b.Error(err)
						return
					}
					ws.Close()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
}

// TestReadyWhileDraining: once Shutdown starts, /ready answers 503 naming the edge as
// draining, whatever the services say.
func TestReadyWhileDraining(t *testing.T) {
	t.Parallel()
	te := startEdge(t, nil)
	<-te.e.streams.Started()
	readyReasons := func() (int, map[string]string) {
		rw := httptest.NewRecorder()
		te.e.Handler().ServeHTTP(rw, httptest.NewRequest(http.MethodGet, "/ready", nil))
		var body struct {
			Reasons map[string]string `json:"reasons"`
		}
		_ = json.Unmarshal(rw.Body.Bytes(), &body)
		return rw.Code, body.Reasons
	}
	if _, reasons := readyReasons(); reasons["edge"] != "" {
		t.Fatalf("before Shutdown: reasons %v, want nothing about the edge itself", reasons)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := te.e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if code, reasons := readyReasons(); code != http.StatusServiceUnavailable || reasons["edge"] != "draining" {
		t.Errorf("after Shutdown: %d %v, want 503 with edge: draining", code, reasons)
	}
}
