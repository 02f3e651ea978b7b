package hub

import (
	"errors"
	"os"
	"time"
)

// Parking: an idle connection without a goroutine (doc.go, "Idle connections").
//
// Between two messages, a reader that can park (c.fd >= 0) waits at most
// ParkAfter for the client's next frame, with a read deadline of its own on a
// one-byte Peek of gorilla's read buffer: a timeout there is not gorilla's, so
// it does not break the connection (bufio hands an error out once, then reads
// again). When nothing came, the connection parks: the poller watches the socket
// and the reader's goroutine ends. wake starts a new reader when the socket is
// readable, when the read deadline passes (parkTimer) or when the connection
// starts closing.

// awaitMessage runs between two messages on a connection that can park. It
// consumes the client's pongs itself (gorilla would answer them too, but then
// keep waiting inside NextReader for a data frame, holding the goroutine) and
// parks the connection when nothing arrives within ParkAfter. It returns true
// when it parked; false when NextReader should read: a frame is buffered, the
// connection is closing, or reading failed (NextReader meets the error again).
func (c *Connection[U]) awaitMessage() bool {
	for {
		if c.br.Buffered() > 0 {
			if c.skipPong() {
				continue
			}
			return false
		}
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return false
		}
		// A reader that wake started reads first under the real deadline: the socket is
		// readable (or the deadline has passed), and a short deadline could expire
		// before the read is even tried (Go checks it first), parking the connection
		// again at once, over and over.
		woken := c.woken
		c.woken = false
		grace := time.Now().Add(c.m.cfg.ParkAfter)
		short := !woken && grace.Before(c.readDeadline)
		if short {
			_ = c.ws.SetReadDeadline(grace)
		}
		c.mu.Unlock()

		_, err := c.br.Peek(1)

		if short {
			// Put back the deadline the connection keeps, also when it started closing
			// meanwhile: until writeClose sets its grace (through setReadDeadlineLocked,
			// so c.readDeadline holds it once set), the short one may have passed, and
			// the next read would fail at once and tear the connection down in the
			// middle of flushing its queue.
			c.mu.Lock()
			_ = c.ws.SetReadDeadline(c.readDeadline)
			c.mu.Unlock()
		}
		switch {
		case err == nil:
			// A frame arrived: a pong is consumed above, anything else read by gorilla.
		case short && errors.Is(err, os.ErrDeadlineExceeded):
			if c.park() {
				return true
			}
			return false
		default:
			return false
		}
	}
}

// skipPong consumes the buffered frame when it is a whole, well-formed pong
// from a client (FIN, no extension bits, masked, payload of at most 125 bytes)
// and extends the read deadline, as the pong handler would. It consumes nothing
// and returns false for any other frame: gorilla reads it (and rejects a
// malformed one).
func (c *Connection[U]) skipPong() bool {
	const finPong, masked, lenMask, maxControl = 0x8A, 0x80, 0x7F, 125
	h, err := c.br.Peek(2)
	if err != nil || h[0] != finPong || h[1]&masked == 0 || int(h[1]&lenMask) > maxControl {
		return false
	}
	n := 2 + 4 + int(h[1]&lenMask) // header, masking key, payload
	if _, err := c.br.Peek(n); err != nil {
		return false
	}
	_, _ = c.br.Discard(n)
	c.refreshReadDeadline()
	return true
}

// park hands the connection to the poller: no goroutine reads it until wake.
// It returns false, leaving the caller the reader, when the connection is
// closing or the poller refuses the socket.
func (c *Connection[U]) park() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	if err := c.m.poller.Wait(c.fd, c.wakeFn); err != nil {
		c.m.log.Warn("websocket connection cannot park", "user_id", c.ID, "conn_id", c.connID, "err", err)
		return false
	}
	c.parked = true
	c.m.parked.Add(1)
	if c.parkTimer == nil {
		c.parkTimer = time.AfterFunc(time.Until(c.readDeadline), c.wakeFn)
	} else {
		c.parkTimer.Reset(time.Until(c.readDeadline))
	}
	return true
}

// wake ends a parked connection's wait and starts a reader for it: the socket
// is readable, the read deadline has passed (the reader then fails on it) or the
// connection is closing. It does nothing for a connection that is not parked, so
// a late timer or a stale poller callback is harmless.
func (c *Connection[U]) wake() {
	c.mu.Lock()
	if !c.parked {
		c.mu.Unlock()
		return
	}
	c.parked = false
	c.woken = true
	c.m.parked.Add(-1)
	c.m.poller.Cancel(c.fd)
	c.parkTimer.Stop()
	c.mu.Unlock()
	go c.read()
}
