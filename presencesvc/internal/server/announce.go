package server

import (
	"context"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/presencesvc/internal/presence"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/fanout"
)

// EventService is the name presence events carry on the bus.
const EventService = "presence"

// announceTimeout bounds the work of telling contacts about one batch of transitions.
const announceTimeout = 5 * time.Second

// ChatPeer is what presence needs from the chat service: the accepted contacts of many
// users in one call, and ending the typing indicators of a user who went offline.
// chatv1connect.ChatServiceClient implements it.
type ChatPeer interface {
	ListContactIds(context.Context, *connect.Request[chatv1.ListContactIdsRequest]) (*connect.Response[chatv1.ListContactIdsResponse], error)
	StopTyping(context.Context, *connect.Request[chatv1.StopTypingRequest]) (*connect.Response[chatv1.StopTypingResponse], error)
}

// Announcer tells the online contacts of users about their transitions.
type Announcer struct {
	chat   ChatPeer
	routes fanout.RouteLookup
	bus    bus.Bus
	log    *slog.Logger
}

// NewAnnouncer returns an announcer that finds contacts through chat and their edges
// through routes (the presence store itself, not an RPC), and publishes on b.
func NewAnnouncer(chat ChatPeer, routes fanout.RouteLookup, b bus.Bus, log *slog.Logger) *Announcer {
	return &Announcer{chat: chat, routes: routes, bus: b, log: log}
}

// Announce publishes PRESENCE_EVENT for every real transition among ts to the online
// contacts of its user: one ListContactIds call and one route query for the whole batch,
// then one bus message per edge and transition. Users who went offline also get their typing
// indicators stopped. Failures are logged: the transitions are already committed.
func (a *Announcer) Announce(ctx context.Context, ts ...presence.Transition) {
	var changed []presence.Transition
	for _, t := range ts {
		if t.Changed {
			changed = append(changed, t)
		}
	}
	if len(changed) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), announceTimeout)
	defer cancel()

	users := make([]int64, len(changed))
	for i, t := range changed {
		users[i] = t.UserID
	}
	contacts, err := a.contacts(ctx, users)
	if err != nil {
		a.log.Error("presence not announced: list contacts", "users", len(users), "user_id", users[0], "err", err)
	} else {
		a.publish(ctx, changed, contacts)
	}
	for _, t := range changed {
		if t.IsOnline {
			continue
		}
		if _, err := a.chat.StopTyping(ctx, connect.NewRequest(&chatv1.StopTypingRequest{UserId: t.UserID})); err != nil {
			a.log.Warn("stop typing of offline user", "user_id", t.UserID, "err", err)
		}
	}
}

func (a *Announcer) contacts(ctx context.Context, users []int64) (map[int64][]int64, error) {
	res, err := a.chat.ListContactIds(ctx, connect.NewRequest(&chatv1.ListContactIdsRequest{UserIds: users}))
	if err != nil {
		return nil, err
	}
	out := make(map[int64][]int64, len(users))
	for _, c := range res.Msg.GetContacts() {
		out[c.GetUserId()] = c.GetContactIds()
	}
	return out, nil
}

func (a *Announcer) publish(ctx context.Context, changed []presence.Transition, contacts map[int64][]int64) {
	var all []int64
	for _, t := range changed {
		all = append(all, contacts[t.UserID]...)
	}
	if len(all) == 0 {
		return
	}
	// One route query for every contact of the batch; each Publish below then reads it.
	routes, err := a.routes.Routes(ctx, all)
	if err != nil {
		a.log.Error("presence not announced: look up routes", "contacts", len(all), "err", err)
		return
	}
	pub := fanout.NewPublisher(a.bus, fanout.RouteLookupFunc(func(context.Context, []int64) (map[int64][]string, error) {
		return routes, nil
	}), EventService)
	for _, t := range changed {
		ev := &presencev1.PresenceEvent{UserId: t.UserID, IsOnline: t.IsOnline}
		if !t.IsOnline {
			ev.LastSeen = t.LastSeen
		}
		msg := &presencev1.StreamEventsResponse{Event: &presencev1.StreamEventsResponse_Presence{Presence: ev}}
		if _, err := pub.Publish(ctx, msg, contacts[t.UserID]...); err != nil {
			a.log.Error("publish presence event", "user_id", t.UserID, "online", t.IsOnline, "err", err)
		}
	}
}
