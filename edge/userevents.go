package edge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/edge/internal/cursor"
	"github.com/charla/charla/edge/internal/frames"
	"github.com/charla/charla/edge/internal/upstream"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
)

// streamUserEvents is the name of the user event log stream, as /ready reports it.
const streamUserEvents = "events"

// userEvent is a record of the user event log made ready to write: its frame type and
// JSON payload are computed once for every connection that gets it.
type userEvent struct {
	seq      uint64
	exclude  string
	typ      string // empty: an event this edge does not write (its seq still counts)
	body     []byte
	tc       map[string]string
	created  time.Time // the message's timestamp for NEW_CHAT_MESSAGE, else the record's
	service  string
	replayed bool // a resume's copy: also written to the connection that caused it
	// NEW_CHAT_MESSAGE to its recipient: a write is a delivery receipt.
	recipient, messageID int64
}

func seqOf(ev *userEvent) uint64 { return ev.seq }

// connCursor is a connection's place in its user's sequence (internal/cursor).
type connCursor = cursor.Cursor[*userEvent]

// logState is where the edge stands in the user event log.
type logState struct {
	mu       sync.Mutex
	position uint64
	known    bool // position is set: a reopened stream continues after it
	resync   bool // the stream restarted from now: every connection must catch up
}

// addUserEventStream declares the stream of the user event log. It continues after the
// last position seen; when the presence service no longer holds it (out_of_range), it
// starts from now and every connection catches up from its user's history.
func (e *Edge) addUserEventStream() {
	e.streams.Add(streamUserEvents, func(ctx context.Context, opened func()) error {
		req := &presencev1.StreamUserEventsRequest{EdgeId: e.edgeID}
		e.userLog.mu.Lock()
		if e.userLog.known {
			p := e.userLog.position
			req.AfterPosition = &p
		}
		e.userLog.mu.Unlock()
		err := upstream.Consume(ctx, func(ctx context.Context) (*connect.ServerStreamForClient[presencev1.StreamUserEventsResponse], error) {
			return e.clients.Presence.StreamUserEvents(ctx, connect.NewRequest(req))
		}, opened, e.onUserEvents)
		if connect.CodeOf(err) == connect.CodeOutOfRange {
			e.userLog.mu.Lock()
			e.userLog.known, e.userLog.resync = false, true
			e.userLog.mu.Unlock()
		}
		return err
	})
}

// onUserEvents handles one message of the log stream: the first says where it starts;
// the others carry records, each offered to the cursor of every local connection of its
// user.
func (e *Edge) onUserEvents(msg *presencev1.StreamUserEventsResponse) {
	if len(msg.GetEvents()) == 0 {
		e.userLog.mu.Lock()
		if !e.userLog.known {
			e.userLog.position, e.userLog.known = msg.GetStartedAfter(), true
		}
		resync := e.userLog.resync
		e.userLog.resync = false
		e.userLog.mu.Unlock()
		if resync {
			e.hub.ForEach(func(c *Conn) {
				if cur := e.cursorOf(c); cur != nil && cur.Resync() {
					go e.catchUp(c, cur)
				}
			})
		}
		return
	}
	var last uint64
	for _, ue := range msg.GetEvents() {
		last = ue.GetPosition()
		conns := e.hub.Connections(ue.GetUserId())
		if len(conns) == 0 {
			continue
		}
		ev := e.render(ue)
		for _, c := range conns {
			if cur := e.cursorOf(c); cur != nil && cur.Offer(ev) {
				go e.catchUp(c, cur)
			}
		}
	}
	e.userLog.mu.Lock()
	e.userLog.position = last
	e.userLog.mu.Unlock()
}

// render decodes a record's event and encodes its frame payload.
func (e *Edge) render(ue *presencev1.UserEvent) *userEvent {
	ev := &userEvent{seq: ue.GetSeq(), exclude: ue.GetExcludeConnectionId(), service: ue.GetService(), created: time.UnixMilli(ue.GetTimeMs())}
	var payload any
	switch ue.GetService() {
	case streamChat:
		m := new(chatv1.StreamEventsResponse)
		if !e.decode(ue, m, &ev.tc) {
			return ev
		}
		switch {
		case m.GetNewChatMessage() != nil:
			nm := m.GetNewChatMessage()
			ev.typ, payload = frames.TypeNewChatMessage, frames.NewChatMessageFrom(nm)
			if nm.GetMessage().GetToUserId() == ue.GetUserId() {
				ev.recipient, ev.messageID = ue.GetUserId(), nm.GetMessage().GetId()
			}
			ev.created = time.UnixMilli(nm.GetMessage().GetTimestamp())
		case m.GetMessageStatusUpdate() != nil:
			ev.typ, payload = frames.TypeMessageStatusUpdate, frames.MessageStatusUpdateFrom(m.GetMessageStatusUpdate())
		}
	case streamNotify:
		m := new(notifyv1.StreamEventsResponse)
		if e.decode(ue, m, &ev.tc) && m.GetNewNotification() != nil {
			ev.typ, payload = frames.TypeNewNotification, frames.NotificationFrom(m.GetNewNotification())
		}
	case streamPresence:
		m := new(presencev1.StreamEventsResponse)
		if e.decode(ue, m, &ev.tc) && m.GetPresence() != nil {
			ev.typ, payload = frames.TypePresenceEvent, frames.PresenceEventFrom(m.GetPresence())
		}
	}
	if ev.typ == "" {
		return ev
	}
	body, err := frames.EncodePayload(payload)
	if err != nil {
		e.log.Error("encode event", "type", ev.typ, "err", err)
		ev.typ = ""
		return ev
	}
	ev.body = body
	return ev
}

// eventMessage is a service's StreamEventsResponse, as a log record carries it.
type eventMessage interface {
	proto.Message
	GetTraceContext() map[string]string
}

// decode unmarshals a record's event into m and sets *tc to its trace context. An event
// that does not decode is logged and reported false: its seq still counts (the cursor
// passes over it), nothing is written.
func (e *Edge) decode(ue *presencev1.UserEvent, m eventMessage, tc *map[string]string) bool {
	if err := proto.Unmarshal(ue.GetEvent(), m); err != nil {
		e.log.Error("drop undecodable event", "service", ue.GetService(), "user_id", ue.GetUserId(), "seq", ue.GetSeq(), "err", err)
		return false
	}
	*tc = m.GetTraceContext()
	return true
}

// cursorOf returns the cursor of a connection (nil before onConnect made it or after
// onDisconnect dropped it).
func (e *Edge) cursorOf(c *Conn) *connCursor {
	if s := e.stateOf(c); s != nil {
		return s.cursor
	}
	return nil
}

// newState makes the state of a new connection: a cursor that writes each event to c,
// bound to the session c opened with.
func (e *Edge) newState(c *Conn) *connState {
	s := &connState{e: e, c: c, cursor: cursor.New(seqOf, func(ev *userEvent) { e.write(c, ev) })}
	s.session.Store(&boundSession{id: c.UserData.SessionID, expiresAt: c.UserData.ExpiresAt})
	e.conns.Store(c.ConnID(), s)
	return s
}

// write writes one event to c (under c's cursor lock: in seq order), unless c caused it
// and it is not a replay.
func (e *Edge) write(c *Conn, ev *userEvent) {
	if ev.typ == "" || (!ev.replayed && ev.exclude != "" && ev.exclude == c.ConnID()) {
		return
	}
	ctx, end := e.cfg.Metrics.StartDeliverySpan(c.Context(), ev.tc, ev.typ, c.ID, c.ConnID())
	defer end()
	var onWritten func()
	if ev.recipient == c.ID && ev.messageID != 0 {
		recipient, id := ev.recipient, ev.messageID
		sent := trace.SpanContextFromContext(ctx) // the delivery span, in the send's trace
		onWritten = func() { e.receipts.AddTraced(recipient, id, sent) }
	}
	e.sent(c.SendEvent(frames.SeqEventFrame(e.newPID(), ev.typ, ev.seq, ev.body), onWritten))
	if !ev.replayed {
		// A resume's replay is not live delivery: its lag is the client's absence.
		e.cfg.Metrics.EventDelivered(ctx, ev.service, ev.typ, time.Since(ev.created))
	}
}

// catchUp reads the events c's cursor is missing from the history and hands them in,
// until no gap remains. A history that no longer holds them closes the connection: its
// client resumes, is told "failed" and refetches (docs/protocol.md §8.3).
func (e *Edge) catchUp(c *Conn, cur *connCursor) {
	for {
		after := cur.Next() - 1
		res, err := e.readEvents(c.Context(), c.ID, after, false)
		if err != nil {
			if c.Context().Err() != nil {
				return
			}
			e.log.Warn("catch up events", "user_id", c.ID, "after", after, "err", err)
			cur.Fail()
			c.Close(closeInternal, "events unavailable: reconnect and resume")
			return
		}
		evs := make([]*userEvent, 0, len(res.GetEvents()))
		for _, ue := range res.GetEvents() {
			evs = append(evs, e.render(ue))
		}
		if cur.CaughtUp(evs, res.GetComplete()) {
			continue
		}
		if cur.State() == cursor.Failed {
			c.Close(closeInternal, "events lost: reconnect and resume")
		}
		return
	}
}

// closeInternal is WebSocket's 1011 (docs/protocol.md §8.6).
const closeInternal = 1011

// replayPart is how many replayed events are queued at once, waiting for the client to
// read them before the next part (a replay may be longer than SEND_CHANNEL_BUFFER).
const replayPart = 64

// startEvents runs on a new connection before any other frame: it reads the user's last
// seq (and, on resume, the missed events), sends CONNECTED, the replay, and then lets the
// cursor pass live events on. cur is the connection's cursor, made (newState) before
// anything was read, so that it holds every event that arrives meanwhile. lastSeq, when not
// nil, is the user's last seq as presence's Connect answered it, read after cur was made
// (onConnect): without resume, nothing more is read.
func (e *Edge) startEvents(c *Conn, cur *cursor.Cursor[*userEvent], lastSeq *uint64) error {
	d := c.UserData
	var res *presencev1.ReadUserEventsResponse
	if lastSeq != nil { // onConnect passes one only without resume
		res = &presencev1.ReadUserEventsResponse{LastSeq: *lastSeq, Complete: true}
	} else {
		var err error
		if res, err = e.readEvents(c.Context(), c.ID, d.Resume, !d.Resuming); err != nil {
			return err
		}
	}
	resume := frames.ResumeNone
	var replay []*userEvent
	if d.Resuming {
		resume = frames.ResumeFailed
		if res.GetComplete() {
			resume = frames.ResumeOK
			for _, ue := range res.GetEvents() {
				ev := e.render(ue)
				ev.replayed = true
				replay = append(replay, ev)
			}
		}
	}
	body, err := frames.EncodePayload(frames.Connected{
		UserID: c.ID, ConnectionID: c.ConnID(), LastSeq: res.GetLastSeq(), ExpiresAt: d.ExpiresAt, Resume: resume,
	})
	if err != nil {
		return err
	}
	if err := c.Send(frames.EventFrame(e.newPID(), frames.TypeConnected, body)); err != nil {
		return err
	}
	for len(replay) > 0 {
		n := min(len(replay), replayPart)
		for _, ev := range replay[:n] {
			e.write(c, ev)
		}
		replay = replay[n:]
		if len(replay) > 0 {
			if err := c.WaitQueued(c.Context(), replayPart); err != nil {
				return err
			}
		}
	}
	if cur.Start(res.GetLastSeq(), nil) {
		go e.catchUp(c, cur)
	}
	if cur.State() == cursor.Failed {
		c.Close(closeInternal, "too many events while connecting: reconnect and resume")
	}
	return nil
}

func (e *Edge) readEvents(ctx context.Context, user int64, after uint64, lastOnly bool) (*presencev1.ReadUserEventsResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	res, err := e.clients.Presence.ReadUserEvents(ctx, connect.NewRequest(&presencev1.ReadUserEventsRequest{UserId: user, AfterSeq: after, LastOnly: lastOnly}))
	if err != nil {
		return nil, fmt.Errorf("read user events of user %d: %w", user, err)
	}
	return res.Msg, nil
}
