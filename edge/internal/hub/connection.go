package hub

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/charla/charla/edge/internal/frames"
	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// closeGrace bounds how long a connection waits for the client to answer the
// server's close frame. Closing the socket while the client's frames are still
// unread makes the kernel send a reset, which can destroy the close frame
// before the client reads it; waiting for the echo (or EOF) avoids that.
const closeGrace = 2 * time.Second

// maxCloseReason is the room left for the reason in a close frame (125 bytes
// of control payload minus the 2-byte code).
const maxCloseReason = 123

type outMsg struct {
	data      []byte
	onWritten func()
}

// Connection is one live WebSocket connection of an authenticated user. Its
// methods are safe for concurrent use.
type Connection[UserData any] struct {
	// ID is the authenticated user's id.
	ID int64
	// UserData is what AuthenticateAndGetUserData returned for it.
	UserData UserData

	connID    string
	m         *ConnectionManager[UserData]
	ws        *websocket.Conn
	ctx       context.Context
	cancel    context.CancelFunc
	pingTimer *time.Timer    // AfterFunc: no goroutine and no channel while it waits
	writers   sync.WaitGroup // the write pump, while it runs

	mu            sync.Mutex
	queue         []outMsg // grows on demand: an idle connection holds none
	pending       int      // queued plus being written, bounded by SendChannelBuffer
	writing       bool     // a write pump is running
	pingDue       bool
	closing       bool
	closeCode     int // 0: no close frame to send (the peer is gone or already answered)
	closeReason   string
	closeSent     bool // gorilla already wrote the close frame (1009)
	closeDeadline time.Time
	closeCause    error
	// inFrame: the reader is inside ProcessClientMessage. Events sent meanwhile
	// wait in held (counted in pending) until the frame's reply is queued, so a
	// command's reply always precedes the events it causes (docs/protocol.md §3.4).
	inFrame bool
	held    []outMsg // nil unless an event arrived during a frame
	// readDeadline is the socket's read deadline outside a reader's short wait
	// before parking: PongWait after the last message or pong, or the close grace.
	readDeadline time.Time
	parked       bool        // no goroutine reads: the poller or parkTimer wakes it
	woken        bool        // the reader was started by wake: its first wait is not short
	parkTimer    *time.Timer // enforces readDeadline while parked; nil until the first park

	// Set at upgrade. br is gorilla's read buffer; fd is the socket's descriptor,
	// or -1 when the connection never parks.
	br     *bufio.Reader
	fd     int
	wakeFn func() // c.wake, made once rather than per park

	// The reader's only (readers follow one another, ordered by mu through park and wake).
	limiter  *rate.Limiter
	rateErrs []time.Duration // ring of the last MaxRateErrors rate errors, since manager start
	rateNext int
}

func newConnection[U any](m *ConnectionManager[U], ws *websocket.Conn, userID int64, data U) *Connection[U] {
	c := &Connection[U]{
		ID:       userID,
		UserData: data,
		connID:   m.prefix + "-" + strconv.FormatUint(m.nextConn.Add(1), 36),
		m:        m,
		ws:       ws,
		fd:       -1,
	}
	c.wakeFn = c.wake
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if m.cfg.RateLimit > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(m.cfg.RateLimit), m.cfg.RateBurst)
	}
	c.pingTimer = time.AfterFunc(m.cfg.PingPeriod, c.pingNow)
	return c
}

// ConnID identifies the connection uniquely within the process (a random
// per-manager prefix and a counter, characters [A-Za-z0-9_-]).
func (c *Connection[U]) ConnID() string { return c.connID }

// Manager returns the manager that holds the connection.
func (c *Connection[U]) Manager() *ConnectionManager[U] { return c.m }

// Context is cancelled as soon as the connection starts closing; work done on
// the connection's behalf (RPCs) should derive from it.
func (c *Connection[U]) Context() context.Context { return c.ctx }

// RemoteAddr returns the peer's network address.
func (c *Connection[U]) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// Send enqueues a text message without blocking; it is for replies, which are
// never held (server-initiated events go through SendEvent). When the queue already holds
// SendChannelBuffer messages the client is not reading: the connection is
// closed with 1008 "slow consumer" and ErrSlowConsumer returned. Once the
// connection is closing it returns ErrClosed. msg must not be modified after
// the call.
func (c *Connection[U]) Send(msg []byte) error {
	return c.enqueue(outMsg{data: msg})
}

// SendWithCallback is Send with onWritten, which runs after the message was
// written to the socket successfully (delivery receipts). It runs on the write
// pump goroutine, between two writes: it must return quickly and must not
// wait for anything the write pump does. It is not called when the message is
// never written (the connection closed first).
func (c *Connection[U]) SendWithCallback(msg []byte, onWritten func()) error {
	return c.enqueue(outMsg{data: msg, onWritten: onWritten})
}

// SendEvent enqueues a server-initiated event without blocking. Unlike Send
// (meant for replies, which are never held), an event sent while the connection
// is processing a client message (ProcessClientMessage is running) is held and
// queued right after that call returns, that is after the message's reply: a
// command's reply is written before any event it causes on the same connection,
// even when the service pushes the event before the command's RPC returns.
// Held events count against SendChannelBuffer like queued ones (an overflow is
// the slow-consumer close, 1008). onWritten, when not nil, runs as for
// SendWithCallback. msg must not be modified after the call.
func (c *Connection[U]) SendEvent(msg []byte, onWritten func()) error {
	return c.enqueueEvent(outMsg{data: msg, onWritten: onWritten})
}

// SendJSON marshals v and sends it.
func (c *Connection[U]) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Send(b)
}

// SendErrorNotification sends the error reply of docs/protocol.md §3.5 (frames.MarshalError).
func (c *Connection[U]) SendErrorNotification(pid string, code int, message string) error {
	return c.Send(frames.MarshalError(pid, code, message))
}

// Close starts closing the connection with code and reason: the write pump
// flushes what is already queued, writes the close frame (all within
// WriteWait), waits briefly for the client's answer and the connection is torn
// down. It returns at once and is idempotent: only the first close counts.
func (c *Connection[U]) Close(code int, reason string) {
	var cause error
	if code != websocket.CloseNormalClosure {
		cause = &CloseError{Code: code, Reason: reason}
	}
	c.closeWith(code, reason, cause, false)
}

func (c *Connection[U]) enqueue(m outMsg) error { return c.push(m, false) }

func (c *Connection[U]) enqueueEvent(m outMsg) error { return c.push(m, true) }

// push queues m, or holds it when it is an event and a client message is being
// processed.
func (c *Connection[U]) push(m outMsg, event bool) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.pending >= c.m.cfg.SendChannelBuffer {
		c.mu.Unlock()
		// The queue is useless to a client that does not read: drop it, so
		// the close frame is the next thing the write pump tries.
		c.closeWith(websocket.ClosePolicyViolation, "slow consumer",
			&CloseError{Code: websocket.ClosePolicyViolation, Reason: "slow consumer", Err: ErrSlowConsumer}, true)
		return ErrSlowConsumer
	}
	c.pending++
	if event && c.inFrame {
		c.held = append(c.held, m)
		c.mu.Unlock()
		return nil
	}
	c.queue = append(c.queue, m)
	c.startWriterLocked()
	c.mu.Unlock()
	return nil
}

// process runs ProcessClientMessage with events held (see SendEvent), then
// queues the held events after whatever the callback queued (its reply). The
// deferred release also runs when the callback panics.
func (c *Connection[U]) process(fn func(*Connection[U], []byte), msg []byte) {
	c.mu.Lock()
	c.inFrame = true
	c.mu.Unlock()
	defer c.releaseHeld()
	fn(c, msg)
}

// releaseHeld ends a frame: held events join the queue, in the order they came.
// A connection that started closing meanwhile drops them, as Send would have
// refused them: they must not follow the close frame.
func (c *Connection[U]) releaseHeld() {
	c.mu.Lock()
	c.inFrame = false
	if len(c.held) > 0 {
		if c.closing {
			c.pending -= len(c.held)
		} else {
			c.queue = append(c.queue, c.held...)
			c.startWriterLocked()
		}
		clear(c.held)
		c.held = nil
	}
	c.mu.Unlock()
}

// startWriterLocked starts the write pump unless it runs. The write pump only
// lives while there is something to write, so an idle connection costs one
// goroutine at most (the reader; none once parked), not two. c.mu must be held: that makes
// writers.Add happen before the last reader's writers.Wait, which only runs
// once closing is set, after which nothing starts a writer.
func (c *Connection[U]) startWriterLocked() {
	if c.writing {
		return
	}
	c.writing = true
	c.writers.Add(1)
	go c.writePump()
}

// pingNow runs on the ping timer's goroutine and hands the ping to the write
// pump, the only writer of frames other than WriteControl's callers.
func (c *Connection[U]) pingNow() {
	c.mu.Lock()
	if !c.closing {
		c.pingDue = true
		c.startWriterLocked()
	}
	c.mu.Unlock()
}

// closeWith marks the connection closing (first call only), cancels its
// context and makes sure a write pump runs to send the close frame when code
// is not zero. drop discards the queued messages.
func (c *Connection[U]) closeWith(code int, reason string, cause error, drop bool) {
	if len(reason) > maxCloseReason {
		reason = reason[:maxCloseReason]
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.closeCode = code
	c.closeReason = reason
	c.closeCause = cause
	c.closeDeadline = time.Now().Add(c.m.cfg.WriteWait)
	if drop {
		c.dropLocked()
	}
	if code != 0 {
		c.startWriterLocked()
	}
	c.mu.Unlock()
	c.cancel()
	// A parked connection has no reader to finish the close handshake, see the
	// peer's answer or tear down: start one. Closing, it never parks again.
	c.wake()
}

// dropLocked discards the queued and held messages; c.mu must be held.
func (c *Connection[U]) dropLocked() {
	c.pending -= len(c.queue) + len(c.held)
	clear(c.queue)
	c.queue = nil
	clear(c.held)
	c.held = nil
}

func (c *Connection[U]) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// refreshReadDeadline extends the read deadline by PongWait unless the
// connection is closing: then the write pump has set the shorter close grace,
// which must win. The mutex orders the two.
func (c *Connection[U]) refreshReadDeadline() {
	c.mu.Lock()
	if !c.closing {
		c.setReadDeadlineLocked(time.Now().Add(c.m.cfg.PongWait))
	}
	c.mu.Unlock()
}

// setReadDeadlineLocked sets the socket's read deadline and remembers it; c.mu must be held.
func (c *Connection[U]) setReadDeadlineLocked(t time.Time) {
	c.readDeadline = t
	_ = c.ws.SetReadDeadline(t)
}

// writePump is the only goroutine that writes data frames and pings. It runs
// while there is work (queued messages, a due ping, the close frame) and
// returns when there is none.
func (c *Connection[U]) writePump() {
	defer c.writers.Done()
	cfg := &c.m.cfg
	var spare []outMsg
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue = spare[:0]
		ping := c.pingDue
		c.pingDue = false
		closing, code, deadline := c.closing, c.closeCode, c.closeDeadline
		if closing && code == 0 {
			// The read side has ended: nobody is listening any more.
			c.mu.Unlock()
			return
		}
		if len(batch) == 0 && !ping && !closing {
			// Idle: release the queue so that a past burst does not stay
			// pinned to the connection.
			c.queue = nil
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		if ping {
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteWait)); err != nil {
				c.writeFailed(err)
				return
			}
			c.pingTimer.Reset(cfg.PingPeriod)
		}
		if len(batch) == 0 && closing {
			c.writeClose()
			return
		}
		for i := range batch {
			d := time.Now().Add(cfg.WriteWait)
			if closing && deadline.Before(d) {
				d = deadline
			}
			_ = c.ws.SetWriteDeadline(d)
			if err := c.ws.WriteMessage(websocket.TextMessage, batch[i].data); err != nil {
				c.writeFailed(err)
				return
			}
			if batch[i].onWritten != nil {
				batch[i].onWritten()
			}
			batch[i] = outMsg{}
		}
		c.mu.Lock()
		c.pending -= len(batch)
		c.mu.Unlock()
		// Reuse a small batch array for the next round; a large one (a past
		// burst) goes back to the garbage collector.
		if cap(batch) <= 16 {
			spare = batch[:0]
		} else {
			spare = nil
		}
	}
}

// writeClose writes the close frame and gives the client closeGrace to answer;
// the reader sees the answer (or the deadline) and tears down.
func (c *Connection[U]) writeClose() {
	c.mu.Lock()
	code, reason, sent, deadline := c.closeCode, c.closeReason, c.closeSent, c.closeDeadline
	c.mu.Unlock()
	if !sent {
		if time.Until(deadline) < 100*time.Millisecond {
			// The flush used up WriteWait; still give the frame a chance.
			deadline = time.Now().Add(100 * time.Millisecond)
		}
		if err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline); err != nil {
			if !errors.Is(err, websocket.ErrCloseSent) {
				_ = c.ws.NetConn().Close()
				return
			}
		}
	}
	c.mu.Lock()
	c.setReadDeadlineLocked(time.Now().Add(closeGrace))
	c.mu.Unlock()
}

// writeFailed ends a connection whose socket cannot be written: closing the
// socket unblocks the reader, which tears down.
func (c *Connection[U]) writeFailed(err error) {
	c.closeWith(0, "", err, true)
	if !errors.Is(err, websocket.ErrCloseSent) {
		_ = c.ws.NetConn().Close()
	}
}

// readPump is the connection's first reader. It sets up reading, runs OnConnect and
// then reads (see read): the connection's life ends in teardown, on this
// goroutine or on a reader started after the connection parked.
func (c *Connection[U]) readPump() {
	m := c.m
	c.ws.SetReadLimit(m.cfg.MaxMessageSize)
	c.mu.Lock()
	c.setReadDeadlineLocked(time.Now().Add(m.cfg.PongWait))
	c.mu.Unlock()
	c.ws.SetPongHandler(func(string) error {
		c.refreshReadDeadline()
		return nil
	})

	if m.cb.OnConnect != nil {
		// OnConnect runs on a goroutine of its own, and the read pump waits for it: its RPCs
		// go deep (HTTP/2, Connect, protobuf) and would grow the read pump's stack, which
		// then stays grown (8 KiB and more) for as long as the read pump lives.
		done := make(chan error, 1)
		go func() { done <- c.guard("OnConnect", func() error { return m.cb.OnConnect(c) }) }()
		if err := <-done; err != nil {
			m.log.Error("websocket OnConnect failed", "user_id", c.ID, "conn_id", c.connID, "err", err)
			c.Close(websocket.CloseInternalServerErr, "internal error")
		}
	}
	c.read()
}

// read is the only reader while it runs: it reads messages until the connection
// ends, then tears it down, or until it parks, and then returns without tearing
// down; wake starts it again on a new goroutine.
func (c *Connection[U]) read() {
	// A panicking callback closes its own connection with 1011, like net/http
	// recovers a panicking handler, instead of taking every connection of the
	// process down with it. The loop then resumes to finish the close handshake.
	var (
		readErr error
		parked  bool
	)
	for c.guard("message callback", func() error { parked, readErr = c.readLoop(); return nil }) != nil {
		c.Close(websocket.CloseInternalServerErr, "internal error")
	}
	if !parked {
		c.teardown(readErr)
	}
}

// teardown ends the connection once reading has ended with readErr: it
// unregisters it and calls OnDisconnect.
func (c *Connection[U]) teardown(readErr error) {
	m := c.m
	defer m.wg.Done()

	// Whatever ended the loop, the connection is over: mark it (no close frame
	// if nothing was decided yet: the peer is gone or has closed), close the
	// socket to unblock a write in progress, and wait for the write pump.
	// Closing, it cannot be parked, so the poller no longer holds its descriptor.
	c.closeWith(0, "", nil, true)
	_ = c.ws.NetConn().Close()
	c.writers.Wait()
	c.pingTimer.Stop()

	m.unregister(c)

	c.mu.Lock()
	cause := c.closeCause
	c.mu.Unlock()
	if cause == nil {
		cause = readErr
		if websocket.IsCloseError(readErr, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
			cause = nil
		}
	}
	m.log.Debug("websocket closed", "user_id", c.ID, "conn_id", c.connID, "err", cause)
	if m.cb.OnDisconnect != nil {
		_ = c.guard("OnDisconnect", func() error { m.cb.OnDisconnect(c, cause); return nil })
	}
}

// errPanic reports a recovered panic from guard.
var errPanic = errors.New("hub: callback panicked")

// guard runs fn and turns a panic into errPanic, logged with its stack.
func (c *Connection[U]) guard(what string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.m.log.Error("websocket callback panicked", "callback", what, "user_id", c.ID, "conn_id", c.connID,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = errPanic
		}
	}()
	return fn()
}

// readLoop reads messages until the socket fails or the close handshake ends,
// and returns that error, or until the connection parks (parked true).
func (c *Connection[U]) readLoop() (parked bool, _ error) {
	m := c.m
	for {
		if c.fd >= 0 && c.awaitMessage() {
			return true, nil
		}
		mt, r, err := c.ws.NextReader()
		if err == nil && c.isClosing() {
			// Closing: discard until the client answers the close frame.
			continue
		}
		var msg []byte
		if err == nil && mt == websocket.TextMessage {
			msg, err = io.ReadAll(r)
		}
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.tooBig()
			}
			return false, err
		}
		if mt != websocket.TextMessage {
			c.Close(websocket.CloseUnsupportedData, "binary messages are not supported")
			continue
		}
		if !utf8.Valid(msg) {
			c.Close(websocket.CloseInvalidFramePayloadData, "invalid UTF-8")
			continue
		}
		if c.limiter != nil && !c.limiter.Allow() {
			if c.rateErrorLimitReached(time.Since(m.started)) {
				c.Close(websocket.ClosePolicyViolation, "rate limit exceeded")
				continue
			}
			if m.cb.OnRateLimited != nil {
				m.cb.OnRateLimited(c, msg)
			} else {
				_ = c.SendErrorNotification(pidOf(msg, m), 429, "rate limit exceeded")
			}
			continue
		}
		if m.cb.ProcessClientMessage != nil {
			c.process(m.cb.ProcessClientMessage, msg)
		}
		c.refreshReadDeadline()
	}
}

// tooBig handles a message over MaxMessageSize. gorilla has already written
// the 1009 close frame and its reader is dead, so the remaining bytes are
// drained from the socket until the client closes (or closeGrace), to avoid a
// reset that could destroy the close frame in flight.
func (c *Connection[U]) tooBig() {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		c.closeCode = websocket.CloseMessageTooBig
		c.closeReason = "message too big"
		c.closeSent = true
		c.closeCause = &CloseError{Code: websocket.CloseMessageTooBig, Reason: "message too big"}
		c.closeDeadline = time.Now().Add(c.m.cfg.WriteWait)
		c.dropLocked()
	}
	nc := c.ws.NetConn()
	c.setReadDeadlineLocked(time.Now().Add(closeGrace))
	c.mu.Unlock()
	c.cancel()
	_, _ = io.Copy(io.Discard, nc)
}

// rateErrorLimitReached records a rate-limit error and reports whether it is
// one more than MaxRateErrors within RateErrorWindow; now is the time since
// the manager started (monotonic). The ring holds the times
// of the last MaxRateErrors errors; it is allocated on the first error only.
func (c *Connection[U]) rateErrorLimitReached(now time.Duration) bool {
	cfg := &c.m.cfg
	if len(c.rateErrs) < cfg.MaxRateErrors {
		c.rateErrs = append(c.rateErrs, now)
		return false
	}
	oldest := c.rateErrs[c.rateNext]
	if now-oldest < cfg.RateErrorWindow {
		return true
	}
	c.rateErrs[c.rateNext] = now
	c.rateNext = (c.rateNext + 1) % len(c.rateErrs)
	return false
}

// pidOf returns the client's pid when it is a valid one, or a fresh server pid.
func pidOf[U any](msg []byte, m *ConnectionManager[U]) string {
	if pid, ok := frames.ClientPID(msg); ok {
		return pid
	}
	return m.newPID()
}

// WaitQueued waits until at most n messages wait to be written on the connection, so a
// long run of events (a resume's replay) can be sent in parts without overrunning
// SendChannelBuffer. It returns ErrClosed once the connection is closing.
func (c *Connection[U]) WaitQueued(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		pending, closing := c.pending, c.closing
		c.mu.Unlock()
		if closing {
			return ErrClosed
		}
		if pending <= n {
			return nil
		}
		t := time.NewTimer(2 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
