package edge

import (
	"context"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/edge/internal/frames"
	"github.com/charla/charla/edge/internal/upstream"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// Stream names, as /ready reports them.
const (
	streamChat     = "chat"
	streamProfile  = "profile"
	streamNotify   = "notify"
	streamPresence = "presence"
)

// addStreams declares one event stream per service. Each event names the users it is for
// (only users this edge holds: the services route by the presence service's table), and
// is written to each of their local connections with a fresh pid, skipping the connection
// that caused it.
func (e *Edge) addStreams() {
	id := e.edgeID
	e.streams.Add(streamChat, func(ctx context.Context, opened func()) error {
		return upstream.Consume(ctx, func(ctx context.Context) (*connect.ServerStreamForClient[chatv1.StreamEventsResponse], error) {
			return e.clients.Chat.StreamEvents(ctx, connect.NewRequest(&chatv1.StreamEventsRequest{EdgeId: id}))
		}, opened, e.onChatEvent)
	})
	e.streams.Add(streamProfile, func(ctx context.Context, opened func()) error {
		return upstream.Consume(ctx, func(ctx context.Context) (*connect.ServerStreamForClient[profilev1.StreamEventsResponse], error) {
			return e.clients.Profile.StreamEvents(ctx, connect.NewRequest(&profilev1.StreamEventsRequest{EdgeId: id}))
		}, opened, e.onProfileEvent)
	})
	e.streams.Add(streamNotify, func(ctx context.Context, opened func()) error {
		return upstream.Consume(ctx, func(ctx context.Context) (*connect.ServerStreamForClient[notifyv1.StreamEventsResponse], error) {
			return e.clients.Notify.StreamEvents(ctx, connect.NewRequest(&notifyv1.StreamEventsRequest{EdgeId: id}))
		}, opened, e.onNotifyEvent)
	})
	e.streams.Add(streamPresence, func(ctx context.Context, opened func()) error {
		return upstream.Consume(ctx, func(ctx context.Context) (*connect.ServerStreamForClient[presencev1.StreamEventsResponse], error) {
			return e.clients.Presence.StreamEvents(ctx, connect.NewRequest(&presencev1.StreamEventsRequest{EdgeId: id}))
		}, opened, e.onPresenceEvent)
	})
}

func (e *Edge) onChatEvent(ev *chatv1.StreamEventsResponse) {
	users, exclude := ev.GetUserIds(), ev.GetExcludeConnectionId()
	switch {
	case ev.GetNewChatMessage() != nil:
		nm := ev.GetNewChatMessage()
		msg := nm.GetMessage()
		e.deliverMessage(ev.GetTraceContext(), users, exclude, msg, frames.NewChatMessageFrom(nm))
	case ev.GetMessageStatusUpdate() != nil:
		e.deliver(ev.GetTraceContext(), users, exclude, frames.TypeMessageStatusUpdate, frames.MessageStatusUpdateFrom(ev.GetMessageStatusUpdate()))
	case ev.GetTypingIndicator() != nil:
		e.deliver(ev.GetTraceContext(), users, exclude, frames.TypeTypingIndicator, frames.TypingIndicatorFrom(ev.GetTypingIndicator()))
	}
}

func (e *Edge) onNotifyEvent(ev *notifyv1.StreamEventsResponse) {
	if n := ev.GetNewNotification(); n != nil {
		e.deliver(ev.GetTraceContext(), ev.GetUserIds(), ev.GetExcludeConnectionId(), frames.TypeNewNotification, frames.NotificationFrom(n))
	}
}

func (e *Edge) onPresenceEvent(ev *presencev1.StreamEventsResponse) {
	if p := ev.GetPresence(); p != nil {
		e.deliver(ev.GetTraceContext(), ev.GetUserIds(), ev.GetExcludeConnectionId(), frames.TypePresenceEvent, frames.PresenceEventFrom(p))
	}
}

func (e *Edge) onProfileEvent(ev *profilev1.StreamEventsResponse) {
	if s := ev.GetSessionEnded(); s != nil {
		e.endSession(ev.GetUserIds(), s.GetSessionId(), s.GetState())
	}
}

// deliver writes one event to every local connection of users but exclude. The payload
// is encoded once; each connection gets its own pid. tc is the event's trace context: each
// write is a delivery span in the trace of the operation that raised the event.
func (e *Edge) deliver(tc map[string]string, users []int64, exclude, typ string, payload any) {
	body, err := frames.EncodePayload(payload)
	if err != nil {
		e.log.Error("encode event", "type", typ, "err", err)
		return
	}
	for _, uid := range users {
		for _, c := range e.hub.Connections(uid) {
			if exclude != "" && c.ConnID() == exclude {
				continue
			}
			_, end := e.cfg.Metrics.StartDeliverySpan(c.Context(), tc, typ, uid, c.ConnID())
			e.sent(c.SendEvent(frames.EventFrame(e.newPID(), typ, body), nil))
			end()
		}
	}
}

// deliverMessage is deliver for NEW_CHAT_MESSAGE: a write to a connection of the
// recipient is a delivery receipt, reported once the bytes are on that socket.
func (e *Edge) deliverMessage(tc map[string]string, users []int64, exclude string, msg *chatv1.ChatMessage, payload frames.NewChatMessage) {
	body, err := frames.EncodePayload(payload)
	if err != nil {
		e.log.Error("encode event", "type", frames.TypeNewChatMessage, "err", err)
		return
	}
	recipient, messageID := msg.GetToUserId(), msg.GetId()
	created := time.UnixMilli(msg.GetTimestamp())
	for _, uid := range users {
		for _, c := range e.hub.Connections(uid) {
			if exclude != "" && c.ConnID() == exclude {
				continue
			}
			ctx, end := e.cfg.Metrics.StartDeliverySpan(c.Context(), tc, frames.TypeNewChatMessage, uid, c.ConnID())
			frame := frames.EventFrame(e.newPID(), frames.TypeNewChatMessage, body)
			var onWritten func()
			if uid == recipient {
				onWritten = func() { e.receipts.Add(recipient, messageID) }
			}
			e.sent(c.SendEvent(frame, onWritten))
			e.cfg.Metrics.EventDelivered(ctx, streamChat, time.Since(created))
			end()
		}
	}
}
