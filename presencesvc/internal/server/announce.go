package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/presencesvc/internal/presence"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/eventlog"
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
	chat ChatPeer
	pub  *fanout.Publisher
	bus  bus.Bus
	log  *slog.Logger
	// announced, when set (tests, benchmarks), is called after each batch with the number
	// of transitions it announced.
	announced func(n int)
}

// NewAnnouncer returns an announcer that finds contacts through chat, appends their
// presence events to the user event log and tells the bus whose state changed (for the
// OnlineCaches of other services). announced, if not nil, is told how many transitions
// each batch announced (for tests).
func NewAnnouncer(chat ChatPeer, events eventlog.Log, b bus.Bus, log *slog.Logger, announced func(n int)) *Announcer {
	return &Announcer{chat: chat, pub: fanout.NewPublisher(b, events, EventService), bus: b, log: log, announced: announced}
}

// Close gives presence events kept for an unreachable event log (fanout.ErrKept) a last
// chance to be appended; call it after the last Announce.
func (a *Announcer) Close() error { return a.pub.Close() }

// Announce publishes PRESENCE_EVENT for every real transition among ts to the online
// contacts of its user, synchronously: see announceQueued. Failures are logged: the
// transitions are already committed.
func (a *Announcer) Announce(ctx context.Context, ts ...presence.Transition) {
	items := make([]queued, 0, len(ts))
	for _, t := range ts {
		items = append(items, queued{ctx: ctx, t: t})
	}
	a.announceQueued(items)
}

// announceQueued announces the changed transitions among items, in their order: one
// ListContactIds call and then one log append per transition for all its contacts, each carrying the trace context of the request that caused it.
// Users who went offline also get their typing indicators stopped. It returns how many
// transitions it announced.
func (a *Announcer) announceQueued(items []queued) int {
	changed := make([]queued, 0, len(items))
	for _, it := range items {
		if it.flush == nil && it.t.Changed {
			changed = append(changed, it)
		}
	}
	if len(changed) == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(changed[0].ctx), announceTimeout)
	defer cancel()

	users := make([]int64, 0, len(changed))
	for _, it := range changed {
		users = append(users, it.t.UserID)
	}
	users = uniq(users)
	if err := a.bus.Publish(ctx, fanout.PresenceChangedSubject, fanout.EncodeUsers(users)); err != nil {
		a.log.Warn("tell the bus whose presence changed", "users", len(users), "err", err)
	}
	contacts, err := a.contacts(ctx, users)
	if err != nil {
		a.log.Error("presence not announced: list contacts", "users", len(users), "user_id", users[0], "err", err)
	} else {
		a.publish(ctx, changed, contacts)
	}
	for _, it := range changed {
		if it.t.IsOnline {
			continue
		}
		if _, err := a.chat.StopTyping(ctx, connect.NewRequest(&chatv1.StopTypingRequest{UserId: it.t.UserID})); err != nil {
			a.log.Warn("stop typing of offline user", "user_id", it.t.UserID, "err", err)
		}
	}
	if a.announced != nil {
		a.announced(len(changed))
	}
	return len(changed)
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

func (a *Announcer) publish(ctx context.Context, changed []queued, contacts map[int64][]int64) {
	var all []int64
	for _, it := range changed {
		all = append(all, contacts[it.t.UserID]...)
	}
	if len(all) == 0 {
		return
	}
	deadline, _ := ctx.Deadline()
	for _, it := range changed {
		t := it.t
		ev := &presencev1.PresenceEvent{UserId: t.UserID, IsOnline: t.IsOnline}
		if !t.IsOnline {
			ev.LastSeen = t.LastSeen
		}
		msg := &presencev1.StreamEventsResponse{Event: &presencev1.StreamEventsResponse_Presence{Presence: ev}}
		// The request's context carries its trace into the event; the batch's deadline
		// still bounds the publish.
		pctx, cancel := context.WithDeadline(it.ctx, deadline)
		if _, err := a.pub.Publish(pctx, msg, contacts[t.UserID]...); errors.Is(err, fanout.ErrKept) {
			a.log.Warn("presence event waits for the event log", "user_id", t.UserID, "online", t.IsOnline, "err", err)
		} else if err != nil {
			a.log.Error("publish presence event", "user_id", t.UserID, "online", t.IsOnline, "err", err)
		}
		cancel()
	}
}

// uniq returns the distinct ids, sorted.
func uniq(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
