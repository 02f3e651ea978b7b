package edge

import (
	"context"

	"connectrpc.com/connect"

	"github.com/charla/charla/edge/internal/frames"
	"github.com/charla/charla/edge/internal/upstream"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
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

// addStreams declares the edge's event streams: the user event log (sequenced events,
// userevents.go) from the presence service, and the unsequenced events of chat (typing),
// profile (sessions ended) and presence (connections to close). Unsequenced events are
// broadcast to every edge; each edge writes them to the connections it holds.
func (e *Edge) addStreams() {
	id := e.edgeID
	e.addUserEventStream()
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
	e.streams.Add(streamPresence, func(ctx context.Context, opened func()) error {
		return upstream.Consume(ctx, func(ctx context.Context) (*connect.ServerStreamForClient[presencev1.StreamEventsResponse], error) {
			return e.clients.Presence.StreamEvents(ctx, connect.NewRequest(&presencev1.StreamEventsRequest{EdgeId: id}))
		}, opened, e.onPresenceEvent)
	})
}

func (e *Edge) onChatEvent(ev *chatv1.StreamEventsResponse) {
	if t := ev.GetTypingIndicator(); t != nil {
		e.deliver(ev.GetTraceContext(), ev.GetUserIds(), ev.GetExcludeConnectionId(), frames.TypeTypingIndicator, frames.TypingIndicatorFrom(t))
	}
}

func (e *Edge) onPresenceEvent(ev *presencev1.StreamEventsResponse) {
	if cc := ev.GetCloseConnection(); cc != nil {
		for _, c := range e.hub.Connections(cc.GetUserId()) {
			if c.ConnID() == cc.GetConnectionId() {
				c.Close(int(cc.GetCode()), cc.GetReason())
			}
		}
	}
}

func (e *Edge) onProfileEvent(ev *profilev1.StreamEventsResponse) {
	if s := ev.GetSessionEnded(); s != nil {
		e.endSession(ev.GetUserIds(), s.GetSessionId(), s.GetState())
	}
}

// deliver writes one unsequenced event to every local connection of users but exclude.
// The payload is encoded once; each connection gets its own pid. tc is the event's trace
// context: each write is a delivery span in the trace of the operation that raised it.
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
