package hub

import (
	"errors"
	"strconv"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/charla/charla/shared/waittest"
)

// TestEventsDuringAFrameFollowItsReply: an event sent (from another goroutine, as the
// upstream streams do) while ProcessClientMessage runs is written after the reply that
// the callback queues, and events keep their order (docs/protocol.md §3.4); outside a frame,
// events go out at once.
func TestEventsDuringAFrameFollowItsReply(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	cb := echoCallbacks(rec)
	cb.ProcessClientMessage = func(c *Connection[testUser], msg []byte) {
		// The service pushes its events before its RPC returns.
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 3 {
				if got := c.Manager().sendToUser(c.ID, []byte("event"+strconv.Itoa(i)+":"+string(msg)), ""); got != 1 {
					t.Errorf("SendMessageToUser: got %d, want 1", got)
				}
			}
		}()
		<-done
		_ = c.Send(append([]byte("reply:"), msg...))
	}
	ts := newTestServer(t, DefaultConfig(), cb)
	c := ts.dial(t, 1)
	for _, msg := range []string{"a", "b"} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"reply:" + msg, "event0:" + msg, "event1:" + msg, "event2:" + msg} {
			if got := readText(t, c); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}
	// Idle: an event is not held.
	waittest.Until(t, "registration", func() bool { return ts.m.isUserOnline(1) })
	conn, _ := ts.m.oneConnection(1)
	if err := conn.SendEvent([]byte("idle"), nil); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, c); got != "idle" {
		t.Fatalf("got %q, want idle", got)
	}
}

// TestHeldEventsCountAgainstTheBuffer: events held during a frame fill the send buffer
// like queued ones, and the overflow closes the connection with 1008; the reply is not
// held and the callbacks of dropped events never run.
func TestHeldEventsCountAgainstTheBuffer(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	cfg := DefaultConfig()
	cfg.SendChannelBuffer = 4
	cb := echoCallbacks(rec)
	errc := make(chan error, 1)
	cb.ProcessClientMessage = func(c *Connection[testUser], msg []byte) {
		for {
			if err := c.SendEvent(msg, func() { t.Error("a held event of a closed connection was written") }); err != nil {
				errc <- err
				return
			}
		}
	}
	ts := newTestServer(t, cfg, cb)
	c := ts.dial(t, 1)
	_ = c.WriteMessage(websocket.TextMessage, []byte("flood"))
	expectClose(t, c, websocket.ClosePolicyViolation)
	if err := <-errc; !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("SendEvent: got %v, want ErrSlowConsumer", err)
	}
	if err := <-rec.discCh; !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("OnDisconnect: got %v, want ErrSlowConsumer", err)
	}
}

// TestHeldEventsReleasedAfterAPanic: a panicking callback does not leave the connection
// holding events forever; it is closed with 1011 as before.
func TestHeldEventsReleasedAfterAPanic(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	cb := echoCallbacks(rec)
	cb.ProcessClientMessage = func(c *Connection[testUser], msg []byte) {
		_ = c.SendEvent([]byte("held"), nil)
		panic("boom")
	}
	ts := newTestServer(t, DefaultConfig(), cb)
	c := ts.dial(t, 1)
	_ = c.WriteMessage(websocket.TextMessage, []byte("x"))
	expectClose(t, c, websocket.CloseInternalServerErr)
	<-rec.discCh
}
