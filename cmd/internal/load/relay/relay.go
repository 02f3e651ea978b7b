// Package relay is the floor the load tool compares Charla with: a raw gorilla/websocket
// relay with the same frame shapes as Charla (CONNECTED first, SERVER_ACK to the sender,
// NEW_CHAT_MESSAGE with a ChatMessage to every connection of the recipient) and nothing
// else: no persistence, no RPC, no presence. A token is "r<userID>"; its check is a parse.
//
// With Options.Resume it also numbers each user's events and serves resume=<seq> from an
// in-memory history (protocol §8.2 and §8.3), so the tool's soak accounting can be tested
// without a server; benchmarks leave it off.
//
// Each connection has one goroutine, its reader (the handler's); frames are written by
// whichever reader produced them, under the connection's write mutex with a deadline, so
// a connection costs what a minimal WebSocket server must hold and no more.
package relay

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

const (
	writeWait  = 10 * time.Second // deadline of one write; a consumer slower than that is dropped
	maxMessage = 16384            // as Charla's MaxMessageSize
)

// Options tune the relay.
type Options struct {
	// DropEvery, when > 0, forwards no NEW_CHAT_MESSAGE for every DropEvery-th message
	// (the sender is still acknowledged): tests use it to check the tool's loss accounting.
	DropEvery int64
	// LateEvery, when > 0, forwards every LateEvery-th NEW_CHAT_MESSAGE only after Late
	// (the sender is acknowledged at once): tests use it to check how the tool tells a
	// late delivery from a lost one.
	LateEvery int64
	Late      time.Duration
	// Resume numbers every NEW_CHAT_MESSAGE of a user (seq in the envelope, from 1), keeps
	// the user's newest HistoryMax of them and serves resume=<seq>: CONNECTED says "ok"
	// and the missed events follow, or "failed" when some are no longer held.
	Resume bool
	// ResumeFault breaks resume on purpose, for tests of the tool's accounting: "skip"
	// answers ok and replays nothing; "repeat" replays from the resumed seq itself, one
	// event too many.
	ResumeFault string
	// KickEvery, with Resume, closes the recipient's connections with 1011 instead of
	// writing every KickEvery-th numbered event to them (the event is held: a resume
	// replays it), as an edge does when the events are unavailable.
	KickEvery int64
}

// HistoryMax is how many events per user the relay holds for resume.
const HistoryMax = 1000

// Relay is an http.Handler serving /ws. Close disconnects every connection.
type Relay struct {
	opts     Options
	upgrader websocket.Upgrader
	nextID   atomic.Int64 // message and connection ids
	count    atomic.Int64 // messages relayed, for DropEvery

	mu      sync.Mutex
	users   map[int64][]*conn
	logs    map[int64]*userLog // with Resume
	done    bool
	closing chan struct{} // closed by Close: held (LateEvery) messages are dropped
	wg      sync.WaitGroup
}

// userLog is one user's numbered events. Its mutex is held while an event is numbered and
// written to the user's connections, and while a connection joins (CONNECTED, replay), so
// a joining connection sees every event exactly once; lock order: userLog.mu, then
// Relay.mu.
type userLog struct {
	mu     sync.Mutex
	seq    int64    // the newest event's
	events [][]byte // the newest frames, events[i] has seq − len(events) + 1 + i
}

type conn struct {
	ws *websocket.Conn
	mu sync.Mutex // serialises writes (gorilla allows one writer at a time)
}

// New returns a relay.
func New(opts Options) *Relay {
	return &Relay{
		opts: opts,
		// A pooled write buffer: an idle connection holds none.
		upgrader: websocket.Upgrader{ReadBufferSize: 2048, WriteBufferSize: 2048, WriteBufferPool: &sync.Pool{}},
		users:    make(map[int64][]*conn),
		logs:     make(map[int64]*userLog),
		closing:  make(chan struct{}),
	}
}

// ServeHTTP checks the token ("r<id>", as a query parameter) and serves the connection.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	userID, err := strconv.ParseInt(strings.TrimPrefix(req.URL.Query().Get("token"), "r"), 10, 64)
	if err != nil || userID <= 0 {
		http.Error(w, `{"code":401,"message":"bad token"}`, http.StatusUnauthorized)
		return
	}
	resume := int64(-1)
	if v := req.URL.Query().Get("resume"); v != "" && r.opts.Resume {
		if resume, err = strconv.ParseInt(v, 10, 64); err != nil || resume < 0 {
			http.Error(w, `{"code":400,"message":"bad resume"}`, http.StatusBadRequest)
			return
		}
	}
	ws, err := r.upgrader.Upgrade(w, req, nil)
	if err != nil {
		return // Upgrade has answered
	}
	ws.SetReadLimit(maxMessage)
	c := &conn{ws: ws}
	var ul *userLog
	if r.opts.Resume {
		ul = r.log(userID)
		ul.mu.Lock() // until CONNECTED and the replay are written
	}
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		if ul != nil {
			ul.mu.Unlock()
		}
		ws.Close()
		return
	}
	r.users[userID] = append(r.users[userID], c)
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()

	if ul == nil {
		connected, _ := json.Marshal(frame{Type: "CONNECTED", PID: r.pid(), Payload: map[string]any{
			"userId": userID, "connectionId": strconv.FormatInt(r.nextID.Add(1), 10), "lastSeq": 0, "expiresAt": 0, "resume": "none",
		}})
		c.write(connected)
	} else {
		r.join(c, userID, ul, resume)
		ul.mu.Unlock()
	}
	r.readPump(c, userID)
	ws.Close()
	r.mu.Lock()
	list := r.users[userID]
	for i, x := range list {
		if x == c {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(r.users, userID)
	} else {
		r.users[userID] = list
	}
	r.mu.Unlock()
}

func (r *Relay) log(userID int64) *userLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	ul := r.logs[userID]
	if ul == nil {
		ul = &userLog{}
		r.logs[userID] = ul
	}
	return ul
}

// join writes CONNECTED and, when resume ≥ 0, the events after it (protocol §8.3);
// ul.mu is held.
func (r *Relay) join(c *conn, userID int64, ul *userLog, resume int64) {
	held := ul.seq - int64(len(ul.events)) // events after held are in ul.events
	status := "none"
	var replay [][]byte
	switch {
	case resume < 0:
	case resume > ul.seq || resume < held:
		status = "failed"
	default:
		status = "ok"
		from := resume - held // index of the first event to replay
		switch r.opts.ResumeFault {
		case "skip":
			from = int64(len(ul.events))
		case "repeat":
			from = max(from-1, 0)
		}
		replay = ul.events[from:]
	}
	connected, _ := json.Marshal(frame{Type: "CONNECTED", PID: r.pid(), Payload: map[string]any{
		"userId": userID, "connectionId": strconv.FormatInt(r.nextID.Add(1), 10), "lastSeq": ul.seq, "expiresAt": 0, "resume": status,
	}})
	c.write(connected)
	for _, ev := range replay {
		c.write(ev)
	}
}

// Close disconnects every connection and waits for their goroutines.
func (r *Relay) Close() {
	r.mu.Lock()
	if !r.done {
		close(r.closing)
	}
	r.done = true
	for _, list := range r.users {
		for _, c := range list {
			c.ws.Close()
		}
	}
	r.mu.Unlock()
	r.wg.Wait()
}

type frame struct {
	Type    string `json:"type"`
	PID     string `json:"pid"`
	Payload any    `json:"payload"`
}

type sendPayload struct {
	ToUserID        int64  `json:"toUserId"`
	Text            string `json:"text"`
	ClientMessageID string `json:"clientMessageId"`
}

type chatMessage struct {
	ID              string `json:"id"`
	ChatID          string `json:"chatId"`
	FromUserID      int64  `json:"fromUserId"`
	ToUserID        int64  `json:"toUserId"`
	Text            string `json:"text"`
	Timestamp       int64  `json:"timestamp"`
	Status          string `json:"status"`
	ClientMessageID string `json:"clientMessageId,omitempty"`
	FromUsername    string `json:"fromUsername"`
}

func (r *Relay) pid() string { return "s-" + strconv.FormatInt(r.nextID.Add(1), 10) }

func (r *Relay) readPump(c *conn, userID int64) {
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var in struct {
			Type    string      `json:"type"`
			PID     string      `json:"pid"`
			Payload sendPayload `json:"payload"`
		}
		if err := json.Unmarshal(b, &in); err != nil || in.Type != "SEND_CHAT_MESSAGE" || in.Payload.ToUserID <= 0 {
			reply, _ := json.Marshal(frame{Type: "ERROR_NOTIFICATION", PID: in.PID, Payload: map[string]any{"code": 400, "message": "only SEND_CHAT_MESSAGE"}})
			c.write(reply)
			continue
		}
		now := time.Now().UnixMilli()
		id := strconv.FormatInt(r.nextID.Add(1), 10)
		msg := chatMessage{
			ID: id, ChatID: strconv.FormatInt(min(userID, in.Payload.ToUserID)<<20|max(userID, in.Payload.ToUserID), 10),
			FromUserID: userID, ToUserID: in.Payload.ToUserID, Text: in.Payload.Text, Timestamp: now,
			Status: "sent_to_server", ClientMessageID: in.Payload.ClientMessageID, FromUsername: "u" + strconv.FormatInt(userID, 10),
		}
		ack, _ := json.Marshal(frame{Type: "SERVER_ACK", PID: in.PID, Payload: map[string]any{
			"messageId": id, "chatId": msg.ChatID, "timestamp": now, "status": "sent_to_server", "clientMessageId": msg.ClientMessageID,
		}})
		if r.opts.Resume {
			// Stored (numbered) before it is acknowledged, as Charla does.
			r.deliverNumbered(in.Payload.ToUserID, msg)
			c.write(ack)
			continue
		}
		c.write(ack)
		n := r.count.Add(1)
		switch {
		case r.opts.DropEvery > 0 && n%r.opts.DropEvery == 0:
		case r.opts.LateEvery > 0 && n%r.opts.LateEvery == 0:
			r.forwardLater(msg)
		default:
			r.forward(msg)
		}
	}
}

// forward writes msg to its recipient's connections.
func (r *Relay) forward(msg chatMessage) {
	r.mu.Lock()
	targets := append([]*conn(nil), r.users[msg.ToUserID]...)
	r.mu.Unlock()
	for _, t := range targets {
		ev, _ := json.Marshal(frame{Type: "NEW_CHAT_MESSAGE", PID: r.pid(), Payload: msg})
		t.write(ev)
	}
}

// forwardLater forwards msg after opts.Late, unless the relay closes first.
func (r *Relay) forwardLater(msg chatMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTimer(r.opts.Late)
		defer t.Stop()
		select {
		case <-t.C:
			r.forward(msg)
		case <-r.closing:
		}
	}()
}

// seqFrame is a numbered event.
type seqFrame struct {
	PID     string `json:"pid"`
	Type    string `json:"type"`
	Seq     int64  `json:"seq"`
	Payload any    `json:"payload"`
}

// deliverNumbered numbers msg in its recipient's log and writes it to the recipient's
// connections.
func (r *Relay) deliverNumbered(to int64, msg chatMessage) {
	ul := r.log(to)
	ul.mu.Lock()
	defer ul.mu.Unlock()
	ul.seq++
	ev, _ := json.Marshal(seqFrame{PID: r.pid(), Type: "NEW_CHAT_MESSAGE", Seq: ul.seq, Payload: msg})
	ul.events = append(ul.events, ev)
	if len(ul.events) > HistoryMax {
		ul.events = ul.events[len(ul.events)-HistoryMax:]
	}
	r.mu.Lock()
	targets := append([]*conn(nil), r.users[to]...)
	r.mu.Unlock()
	kick := r.opts.KickEvery > 0 && ul.seq%r.opts.KickEvery == 0
	for _, t := range targets {
		if kick {
			t.kick(1011, "events unavailable: reconnect and resume")
			continue
		}
		t.write(ev)
	}
}

// kick closes the connection with a close frame.
func (c *conn) kick(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(writeWait))
	c.ws.Close()
}

// write sends one frame; a failed write closes the connection, whose reader then ends.
func (c *conn) write(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.ws.Close()
	}
}
