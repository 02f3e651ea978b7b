package router

import (
	"context"

	"connectrpc.com/connect"

	"github.com/charla/charla/edge/internal/frames"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
)

func handleGetNotifications(ctx context.Context, r *Router, c Caller, payload []byte) (string, any, error) {
	o, ferr := frames.ParseObject(payload, "payload")
	if ferr != nil {
		return "", nil, ferr
	}
	limit, ferr := o.Int("limit", defaultPageLimit, 1, maxPageLimit)
	if ferr != nil {
		return "", nil, ferr
	}
	before, ferr := o.ID("before", false)
	if ferr != nil {
		return "", nil, ferr
	}
	unreadOnly, _, ferr := o.Bool("unreadOnly")
	if ferr != nil {
		return "", nil, ferr
	}
	res, err := r.cfg.Notify.ListNotifications(ctx, connect.NewRequest(&notifyv1.ListNotificationsRequest{
		UserId: c.UserID, Limit: int32(limit), BeforeId: before, UnreadOnly: unreadOnly,
	}))
	if err != nil {
		return "", nil, err
	}
	return frames.TypeNotificationList, frames.NotificationListFrom(res.Msg), nil
}

func handleMarkNotificationRead(ctx context.Context, r *Router, c Caller, payload []byte) (string, any, error) {
	o, ferr := frames.ParseObject(payload, "payload")
	if ferr != nil {
		return "", nil, ferr
	}
	id, ferr := o.ID("notificationId", false)
	if ferr != nil {
		return "", nil, ferr
	}
	all, _, ferr := o.Bool("all")
	if ferr != nil {
		return "", nil, ferr
	}
	if (id != 0) == all {
		return "", nil, frames.Invalid("give exactly one of notificationId or all: true")
	}
	res, err := r.cfg.Notify.MarkRead(ctx, connect.NewRequest(&notifyv1.MarkReadRequest{UserId: c.UserID, NotificationId: id, All: all}))
	if err != nil {
		return "", nil, err
	}
	return frames.TypeServerAck, frames.UpdatedAck{Updated: res.Msg.GetUpdated()}, nil
}
