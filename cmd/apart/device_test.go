package apart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// frame is a server frame (docs/protocol.md §3, §8.2).
type frame struct {
	Type    string          `json:"type"`
	PID     string          `json:"pid"`
	Seq     *uint64         `json:"seq"`
	Payload json.RawMessage `json:"payload"`
}

// connected is CONNECTED's payload (§8.1).
type connected struct {
	UserID       int64  `json:"userId"`
	ConnectionID string `json:"connectionId"`
	LastSeq      uint64 `json:"lastSeq"`
	Resume       string `json:"resume"`
}

// seqEvent is a sequenced event as a connection received it.
type seqEvent struct {
	Seq  uint64
	Type string
	Key  string // what the event is about (eventKey), compared with the history
}

// connLog is what one connection of a device saw.
type connLog struct {
	edge       string  // the edge's address
	resumeFrom *uint64 // the resume asked for; nil when none
	hello      connected
	openedAt   time.Time // when CONNECTED arrived
	events     []seqEvent
	closeCode  int       // the server's close code, 0 when the socket just dropped
	readErr    error     // why the connection ended
	endedAt    time.Time // when the reader saw it end
}

// device is one client of one user that stays connected as a real one would: when its
// connection drops it reconnects at once, to its preferred edge or else to another, with
// ?resume=<the highest seq it saw>. It records every sequenced event of every connection.
// Frames it sends wait for their reply; a send whose connection drops is sent again on the
// next one (the callers' frames are idempotent: SEND_CHAT_MESSAGE carries a clientMessageId).
type device struct {
	name        string
	userID      int64
	token       string
	edges       []string // edge addresses, in order of preference after the preferred one
	noReconnect bool     // when the connection ends, stay down (the cap test)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	pids   atomic.Int64

	mu        sync.Mutex
	preferred int
	conns     []*connLog
	live      *liveConn     // nil while (re)connecting
	changed   chan struct{} // closed and replaced whenever live changes
	down      bool          // the device stopped: no more connections
	failure   error         // why the device could not reconnect
}

// liveConn is the open connection of a device.
type liveConn struct {
	ws      *websocket.Conn
	log     *connLog
	wmu     sync.Mutex // one writer at a time (gorilla)
	pmu     sync.Mutex
	pending map[string]chan frame
	done    chan struct{} // closed when the reader has stopped
}

// statusCounter counts HTTP statuses; safe for concurrent use.
type statusCounter struct {
	mu sync.Mutex
	n  map[int]int
}

func (c *statusCounter) add(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int]int{}
	}
	c.n[status]++
}

// take returns the counts so far and starts again from zero.
func (c *statusCounter) take() map[int]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.n
	c.n = nil
	return out
}

// refusedHandshakes counts the statuses of every handshake an edge refused, over every
// device of the test binary (the fault drill reports and checks them per fault).
var refusedHandshakes statusCounter

// dialLimit bounds how long a device tries to reconnect before giving up.
const dialLimit = 20 * time.Second

// newDevice connects a device of user to edges[preferred] and keeps it connected until
// stop. The first connection must succeed.
func newDevice(ctx context.Context, name string, userID int64, token string, edges []string, preferred int, noReconnect bool) (*device, error) {
	d := &device{name: name, userID: userID, token: token, edges: edges, preferred: preferred, noReconnect: noReconnect, changed: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(ctx)
	lc, err := d.dial(edges[preferred], nil)
	if err != nil {
		d.cancel()
		return nil, err
	}
	d.install(lc)
	d.wg.Add(1)
	go d.supervise(lc)
	return d, nil
}

// supervise waits for each connection to end and opens the next one.
func (d *device) supervise(lc *liveConn) {
	defer d.wg.Done()
	for {
		select {
		case <-lc.done:
		case <-d.ctx.Done():
			lc.ws.Close()
			<-lc.done
		}
		d.install(nil)
		if d.ctx.Err() != nil || d.noReconnect {
			d.setDown(nil)
			return
		}
		next, err := d.reconnect()
		if err != nil {
			d.setDown(err)
			return
		}
		d.install(next)
		lc = next
	}
}

// reconnect dials the preferred edge, then the others, with resume, until one accepts.
func (d *device) reconnect() (*liveConn, error) {
	deadline := time.Now().Add(dialLimit)
	var lastErr error
	for attempt := 0; ; attempt++ {
		d.mu.Lock()
		order := []string{d.edges[d.preferred]}
		for i, e := range d.edges {
			if i != d.preferred {
				order = append(order, e)
			}
		}
		resume := d.maxSeqLocked()
		d.mu.Unlock()
		for _, edge := range order {
			lc, err := d.dial(edge, &resume)
			if err == nil {
				return lc, nil
			}
			lastErr = err
		}
		if time.Now().After(deadline) || d.ctx.Err() != nil {
			return nil, fmt.Errorf("%s: no edge accepted a connection within %v: %w", d.name, dialLimit, lastErr)
		}
		select {
		case <-time.After(time.Duration(min(attempt+1, 10)) * 50 * time.Millisecond):
		case <-d.ctx.Done():
		}
	}
}

// dial opens a connection to edge, reads CONNECTED and starts the reader.
func (d *device) dial(edge string, resume *uint64) (*liveConn, error) {
	url := "ws://" + edge + "/ws?token=" + d.token
	if resume != nil {
		url += "&resume=" + strconv.FormatUint(*resume, 10)
	}
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, res, err := dialer.DialContext(d.ctx, url, nil)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
			res.Body.Close()
			refusedHandshakes.add(status)
		}
		return nil, fmt.Errorf("%s: dial %s: %w (HTTP %d)", d.name, edge, err, status)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var first frame
	if err := ws.ReadJSON(&first); err != nil {
		ws.Close()
		return nil, fmt.Errorf("%s: read CONNECTED from %s: %w", d.name, edge, err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	log := &connLog{edge: edge, resumeFrom: resume, openedAt: time.Now()}
	if first.Type != "CONNECTED" || first.Seq != nil || json.Unmarshal(first.Payload, &log.hello) != nil {
		ws.Close()
		return nil, fmt.Errorf("%s: first frame from %s is %s %s, want CONNECTED without seq", d.name, edge, first.Type, first.Payload)
	}
	lc := &liveConn{ws: ws, log: log, pending: map[string]chan frame{}, done: make(chan struct{})}
	d.mu.Lock()
	d.conns = append(d.conns, log)
	d.mu.Unlock()
	go d.read(lc)
	return lc, nil
}

// read records the frames of lc until it ends.
func (d *device) read(lc *liveConn) {
	defer close(lc.done)
	for {
		var f frame
		err := lc.ws.ReadJSON(&f)
		if err != nil {
			d.mu.Lock()
			lc.log.readErr, lc.log.endedAt = err, time.Now()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				lc.log.closeCode = ce.Code
			}
			d.mu.Unlock()
			return
		}
		switch {
		case f.Seq != nil:
			ev := seqEvent{Seq: *f.Seq, Type: f.Type, Key: eventKey(f)}
			d.mu.Lock()
			lc.log.events = append(lc.log.events, ev)
			d.mu.Unlock()
		case isEvent(f.Type):
			if f.Type != "TYPING_INDICATOR" {
				d.mu.Lock()
				lc.log.events = append(lc.log.events, seqEvent{Type: f.Type, Key: "NO SEQ " + string(f.Payload)})
				d.mu.Unlock()
			}
		default:
			lc.pmu.Lock()
			ch := lc.pending[f.PID]
			delete(lc.pending, f.PID)
			lc.pmu.Unlock()
			if ch != nil {
				ch <- f
			}
		}
	}
}

// install makes lc the live connection (nil: none) and wakes the callers waiting for one.
func (d *device) install(lc *liveConn) {
	d.mu.Lock()
	d.live = lc
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

func (d *device) setDown(err error) {
	d.mu.Lock()
	d.down, d.failure = true, err
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// current waits for a live connection.
func (d *device) current() (*liveConn, error) {
	for {
		d.mu.Lock()
		lc, changed, down, failure := d.live, d.changed, d.down, d.failure
		d.mu.Unlock()
		switch {
		case lc != nil:
			return lc, nil
		case down:
			return nil, fmt.Errorf("%s is down: %v", d.name, failure)
		}
		select {
		case <-changed:
		case <-d.ctx.Done():
			return nil, d.ctx.Err()
		}
	}
}

// errNoReply: the frame had no reply within replyLimit on a connection that stayed open.
var errNoReply = errors.New("no reply")

// replyLimit bounds the wait for one reply (REQUEST_TIMEOUT is 20 s).
const replyLimit = 25 * time.Second

// call sends a frame and returns its reply, sending it again on the next connection when
// the current one drops first. resent counts those extra sends.
func (d *device) call(typ string, payload any) (f frame, resent int, err error) {
	for {
		lc, err := d.current()
		if err != nil {
			return frame{}, resent, err
		}
		pid := fmt.Sprintf("%s-%d", d.name, d.pids.Add(1))
		b, err := json.Marshal(map[string]any{"type": typ, "pid": pid, "payload": payload})
		if err != nil {
			return frame{}, resent, err
		}
		ch := make(chan frame, 1)
		lc.pmu.Lock()
		lc.pending[pid] = ch
		lc.pmu.Unlock()
		lc.wmu.Lock()
		werr := lc.ws.WriteMessage(websocket.TextMessage, b)
		lc.wmu.Unlock()
		if werr == nil {
			select {
			case f := <-ch:
				return f, resent, nil
			case <-lc.done:
			case <-time.After(replyLimit):
				return frame{}, resent, fmt.Errorf("%s: %s %s: %w within %v", d.name, typ, pid, errNoReply, replyLimit)
			}
		}
		// The connection ended before the reply: wait for the next one and send again.
		lc.ws.Close()
		<-lc.done
		select {
		case f := <-ch:
			return f, resent, nil // the reply made it after all
		default:
		}
		for {
			d.mu.Lock()
			same, changed := d.live == lc, d.changed
			d.mu.Unlock()
			if !same {
				break
			}
			select {
			case <-changed:
			case <-d.ctx.Done():
				return frame{}, resent, d.ctx.Err()
			}
		}
		resent++
	}
}

// moveTo makes edge i preferred and closes the live connection (a normal close), so that
// the device resumes there.
func (d *device) moveTo(i int) {
	d.mu.Lock()
	d.preferred = i
	lc := d.live
	d.mu.Unlock()
	if lc == nil {
		return
	}
	lc.wmu.Lock()
	_ = lc.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "moving"), time.Now().Add(time.Second))
	lc.wmu.Unlock()
	lc.ws.Close()
}

// stop closes the device and waits for its goroutines.
func (d *device) stop() {
	d.cancel()
	d.wg.Wait()
}

// maxSeqLocked is the highest seq the device has seen on any connection.
func (d *device) maxSeqLocked() uint64 {
	var m uint64
	for _, c := range d.conns {
		for _, e := range c.events {
			m = max(m, e.Seq)
		}
	}
	return m
}

// snapshot returns a copy of the device's connection logs.
func (d *device) snapshot() []connLog {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]connLog, len(d.conns))
	for i, c := range d.conns {
		out[i] = *c
		out[i].events = append([]seqEvent(nil), c.events...)
	}
	return out
}

// keys counts the events received with each key, over all connections.
func (d *device) keys() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for _, c := range d.conns {
		for _, e := range c.events {
			out[e.Key]++
		}
	}
	return out
}

// connCount is how many connections the device has opened.
func (d *device) connCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// isEvent tells server events (§5) from replies.
func isEvent(typ string) bool {
	switch typ {
	case "NEW_CHAT_MESSAGE", "MESSAGE_STATUS_UPDATE", "TYPING_INDICATOR", "PRESENCE_EVENT", "NEW_NOTIFICATION":
		return true
	}
	return false
}

// eventKey names what an event is about, in the form historyKey gives the same record:
// "msg:<id>", "status:<status>:<ids>", "presence:<user>:<event>", "notification:<id>".
func eventKey(f frame) string {
	var p struct {
		ID         string   `json:"id"`
		MessageIDs []string `json:"messageIds"`
		Status     string   `json:"status"`
		UserID     int64    `json:"userId"`
		Event      string   `json:"event"`
	}
	if err := json.Unmarshal(f.Payload, &p); err != nil {
		return "undecodable " + string(f.Payload)
	}
	switch f.Type {
	case "NEW_CHAT_MESSAGE":
		return "msg:" + p.ID
	case "MESSAGE_STATUS_UPDATE":
		return "status:" + p.Status + ":" + strings.Join(p.MessageIDs, ",")
	case "PRESENCE_EVENT":
		return fmt.Sprintf("presence:%d:%s", p.UserID, p.Event)
	case "NEW_NOTIFICATION":
		return "notification:" + p.ID
	}
	return "unknown " + f.Type
}
