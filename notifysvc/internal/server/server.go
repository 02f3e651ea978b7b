package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/notifysvc/internal/notify"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/svcerr"
)

// Users tells whether a user exists. An unknown user is (false, nil); an error means the
// answer is not known (notify.ErrUnavailable when the profile service does not answer).
type Users interface {
	Exists(ctx context.Context, userID int64) (bool, error)
}

// Publisher pushes an event to the connections of users (fanout.Publisher).
type Publisher interface {
	Publish(ctx context.Context, event proto.Message, userIDs ...int64) (unrouted []int64, err error)
}

// Config holds the handler's dependencies.
type Config struct {
	Store     notify.Store
	Users     Users
	Publisher Publisher
	// Log is where failures are logged; discarded when nil.
	Log *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OnCreate, when set, is called with the owner of every stored notification (the
	// retention pruner's Touch).
	OnCreate func(userID int64)
	// PublishTimeout bounds the push of one event (the publisher retries while the user
	// event log is unreachable); DefaultPublishTimeout when zero.
	PublishTimeout time.Duration
}

// DefaultPublishTimeout is Config.PublishTimeout's default.
// Past it the publisher keeps the event for when the log is back (fanout.ErrKept) and the
// call answers.
const DefaultPublishTimeout = time.Minute

// Server implements notifyv1connect.NotificationServiceHandler except StreamEvents, which
// the service's root package serves from the bus.
type Server struct {
	notifyv1connect.UnimplementedNotificationServiceHandler
	cfg Config
}

var _ notifyv1connect.NotificationServiceHandler = (*Server)(nil)

// New returns a handler over cfg.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	return &Server{cfg: cfg}
}

// CreateNotification validates, checks that the owner exists, stores the notification and
// pushes NEW_NOTIFICATION to the owner's connections. It is stored whether or not the owner
// is online, and a failed push does not fail the call: the client sees it on its next list.
func (s *Server) CreateNotification(ctx context.Context, req *connect.Request[notifyv1.CreateNotificationRequest]) (*connect.Response[notifyv1.CreateNotificationResponse], error) {
	m := req.Msg
	payload, perr := EncodePayload(m.GetPayload())
	n := notify.Notification{
		UserID:    m.GetUserId(),
		Type:      m.GetType(),
		Title:     m.GetTitle(),
		Message:   m.GetMessage(),
		Payload:   payload,
		CreatedAt: s.cfg.Now().UnixMilli(),
	}
	// Fields are checked in order; the payload comes last, so a payload that could not be
	// encoded (left empty) is reported only when everything else is valid.
	if err := notify.ValidateNew(n); err != nil {
		return nil, s.toConnect(ctx, "create notification", n.UserID, err)
	}
	if perr != nil {
		return nil, s.toConnect(ctx, "create notification", n.UserID, perr)
	}
	if err := s.requireUser(ctx, n.UserID); err != nil {
		return nil, s.toConnect(ctx, "create notification", n.UserID, err)
	}
	n, err := s.cfg.Store.Create(ctx, n)
	if err != nil {
		return nil, s.toConnect(ctx, "create notification", n.UserID, err)
	}
	s.cfg.Log.DebugContext(ctx, "notification created", "user_id", n.UserID, "notification_id", n.ID, "type", n.Type)
	if s.cfg.OnCreate != nil {
		s.cfg.OnCreate(n.UserID)
	}
	pb, err := ToProto(n)
	if err != nil {
		return nil, s.toConnect(ctx, "create notification", n.UserID, err)
	}
	event := &notifyv1.StreamEventsResponse{Event: &notifyv1.StreamEventsResponse_NewNotification{NewNotification: pb}}
	// The notification is committed: its event goes out even if the caller has gone, and
	// the call does not wait longer than PublishTimeout for an unreachable event log.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.PublishTimeout)
	defer cancel()
	if _, err := s.cfg.Publisher.Publish(pctx, event, n.UserID); errors.Is(err, fanout.ErrKept) {
		s.cfg.Log.WarnContext(ctx, "new notification event waits for the event log", "user_id", n.UserID, "notification_id", n.ID, "err", err)
	} else if err != nil {
		s.cfg.Log.WarnContext(ctx, "push new notification", "user_id", n.UserID, "notification_id", n.ID, "err", err)
	}
	return connect.NewResponse(&notifyv1.CreateNotificationResponse{Notification: pb}), nil
}

// ListNotifications returns one page, newest first, with the owner's total unread count.
func (s *Server) ListNotifications(ctx context.Context, req *connect.Request[notifyv1.ListNotificationsRequest]) (*connect.Response[notifyv1.ListNotificationsResponse], error) {
	m := req.Msg
	userID := m.GetUserId()
	if err := notify.ValidateUserID("user_id", userID); err != nil {
		return nil, s.toConnect(ctx, "list notifications", userID, err)
	}
	limit, err := notify.PageLimit(m.GetLimit())
	if err != nil {
		return nil, s.toConnect(ctx, "list notifications", userID, err)
	}
	if m.GetBeforeId() < 0 {
		return nil, s.toConnect(ctx, "list notifications", userID,
			notify.Invalid("before_id", "must be a positive notification id or 0, got %d", m.GetBeforeId()))
	}
	if err := s.requireUser(ctx, userID); err != nil {
		return nil, s.toConnect(ctx, "list notifications", userID, err)
	}
	page, err := s.cfg.Store.List(ctx, notify.ListQuery{
		UserID: userID, Limit: limit, BeforeID: m.GetBeforeId(), UnreadOnly: m.GetUnreadOnly(),
	})
	if err != nil {
		return nil, s.toConnect(ctx, "list notifications", userID, err)
	}
	unread, err := s.cfg.Store.UnreadCount(ctx, userID)
	if err != nil {
		return nil, s.toConnect(ctx, "list notifications", userID, err)
	}
	res := &notifyv1.ListNotificationsResponse{
		Notifications: make([]*notifyv1.Notification, 0, len(page)),
		UnreadCount:   unread,
	}
	for _, n := range page {
		pb, err := ToProto(n)
		if err != nil {
			return nil, s.toConnect(ctx, "list notifications", userID, err)
		}
		res.Notifications = append(res.Notifications, pb)
	}
	return connect.NewResponse(res), nil
}

// MarkRead marks one notification (notification_id) or all of them (all) read.
func (s *Server) MarkRead(ctx context.Context, req *connect.Request[notifyv1.MarkReadRequest]) (*connect.Response[notifyv1.MarkReadResponse], error) {
	m := req.Msg
	userID := m.GetUserId()
	if err := notify.ValidateUserID("user_id", userID); err != nil {
		return nil, s.toConnect(ctx, "mark read", userID, err)
	}
	switch {
	case m.GetNotificationId() < 0:
		return nil, s.toConnect(ctx, "mark read", userID,
			notify.Invalid("notification_id", "must be a positive notification id, got %d", m.GetNotificationId()))
	case m.GetNotificationId() > 0 && m.GetAll():
		return nil, s.toConnect(ctx, "mark read", userID,
			notify.Invalid("notification_id", "give either notification_id or all, not both"))
	case m.GetNotificationId() == 0 && !m.GetAll():
		return nil, s.toConnect(ctx, "mark read", userID,
			notify.Invalid("notification_id", "give notification_id or all"))
	}
	if err := s.requireUser(ctx, userID); err != nil {
		return nil, s.toConnect(ctx, "mark read", userID, err)
	}
	var updated int64
	var err error
	if m.GetAll() {
		updated, err = s.cfg.Store.MarkAllRead(ctx, userID)
	} else {
		updated, err = s.cfg.Store.MarkRead(ctx, userID, m.GetNotificationId())
	}
	if err != nil {
		return nil, s.toConnect(ctx, "mark read", userID, err)
	}
	return connect.NewResponse(&notifyv1.MarkReadResponse{Updated: updated}), nil
}

func (s *Server) requireUser(ctx context.Context, userID int64) error {
	ok, err := s.cfg.Users.Exists(ctx, userID)
	if err != nil {
		return fmt.Errorf("look up user %d: %w", userID, err)
	}
	if !ok {
		return fmt.Errorf("user %d: %w", userID, notify.ErrNotFound)
	}
	return nil
}

// toConnect maps any error to the Connect error a client sees; it is the only place that
// does (shared/svcerr: domain errors keep their client-safe message, a peer or the
// database out of reach is unavailable, everything else is logged and answered without
// internals).
func (s *Server) toConnect(ctx context.Context, op string, userID int64, err error) error {
	return svcerr.Mapper{Service: "notification", Log: s.cfg.Log}.ToConnect(ctx, op, err, "user_id", userID)
}

// ToProto converts a stored notification.
func ToProto(n notify.Notification) (*notifyv1.Notification, error) {
	payload, err := DecodePayload(n.Payload)
	if err != nil {
		return nil, fmt.Errorf("notification %d: %w", n.ID, err)
	}
	return &notifyv1.Notification{
		Id:        n.ID,
		UserId:    n.UserID,
		Type:      n.Type,
		Title:     n.Title,
		Message:   n.Message,
		CreatedAt: n.CreatedAt,
		IsRead:    n.IsRead,
		Payload:   payload,
	}, nil
}
