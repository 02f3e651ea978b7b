// Package router answers client frames: one handler per client type of
// docs/protocol.md §4, each in the same pattern: decode and validate the payload, call
// the owning service with RequestTimeout as the deadline, and build the one reply.
//
// The router is pure with respect to the socket: Handle returns the reply bytes and the
// caller writes them, so every frame gets exactly one reply whatever happens inside, and
// the router can be tested and benchmarked without a WebSocket. It is safe for concurrent
// use; it keeps no per-connection state.
package router

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/edge/edgemetrics"
	"github.com/charla/charla/edge/internal/frames"
	"github.com/charla/charla/edge/internal/sendbatch"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
	"github.com/charla/charla/shared/rpc"
)

// Caller is the connection a frame came from.
type Caller struct {
	// UserID is the session's user; it is the sender, reader or viewer of every call.
	UserID int64
	// ConnID identifies the connection across edges; services use it to skip the echo.
	ConnID string
	// Session refreshes the connection's session (REFRESH_SESSION); nil: not offered.
	Session SessionRefresher
}

// SessionRefresher creates a new session for a connection's user and binds the connection
// to it (docs/protocol.md §8.4); a refresh too soon after the last is resource_exhausted.
type SessionRefresher interface {
	RefreshSession(ctx context.Context) (token string, expiresAt int64, err error)
}

// Config configures a Router.
type Config struct {
	Chat    chatv1connect.ChatServiceClient
	Profile profilev1connect.ProfileServiceClient
	Notify  notifyv1connect.NotificationServiceClient
	// RequestTimeout is the deadline of every RPC a frame causes (504 when exceeded).
	RequestTimeout time.Duration
	// NewPID generates the pid of a reply to a frame that had none.
	NewPID func() string
	// Log receives failures worth an operator's eye (500s); never frame contents.
	Log *slog.Logger
	// Metrics counts frames and results and traces each frame; nil records nothing.
	Metrics *edgemetrics.Metrics
}

// handler answers one frame type: it returns the reply type and payload, or an error.
type handler func(ctx context.Context, r *Router, c Caller, payload []byte) (typ string, reply any, err error)

// Router answers client frames.
type Router struct {
	cfg      Config
	handlers map[string]handler
}

// New returns a Router.
func New(cfg Config) *Router {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 20 * time.Second
	}
	return &Router{cfg: cfg, handlers: map[string]handler{
		frames.TypeGetChatList:          handleGetChatList,
		frames.TypeSendChatMessage:      handleSendChatMessage,
		frames.TypeMessagesRead:         handleMessagesRead,
		frames.TypeTypingOn:             handleTypingOn,
		frames.TypeTypingOff:            handleTypingOff,
		frames.TypeGetChatMessages:      handleGetChatMessages,
		frames.TypeGetMyProfile:         handleGetMyProfile,
		frames.TypeGetUserProfile:       handleGetUserProfile,
		frames.TypeUpdateMyProfile:      handleUpdateMyProfile,
		frames.TypeGetNotifications:     handleGetNotifications,
		frames.TypeMarkNotificationRead: handleMarkNotificationRead,
		frames.TypeRefreshSession:       handleRefreshSession,
	}}
}

// Handle answers one client frame and returns the reply to write: the typed response,
// SERVER_ACK or ERROR_NOTIFICATION, always carrying the frame's pid (or a generated one).
// ctx is the connection's context; the RPC deadline is derived from it.
func (r *Router) Handle(ctx context.Context, c Caller, data []byte) []byte {
	f, ferr := frames.ParseFrame(data)
	pid := f.PID
	if pid == "" {
		pid = r.cfg.NewPID()
	}
	h, ok := r.handlers[f.Type]
	label := f.Type
	if ferr != nil || !ok {
		label = unknownType // a label value: never the client's arbitrary string
	}
	m := r.cfg.Metrics
	m.FrameReceived(ctx, label)
	ctx, end := m.StartFrameSpan(ctx, label, c.UserID, pid)
	code, reply := r.handle(ctx, c, f, ferr, h, ok, pid)
	end(code)
	m.FrameResult(ctx, label, code)
	return reply
}

// unknownType labels frames whose type is missing or not one of docs/protocol.md §4.1.
const unknownType = "unknown"

func (r *Router) handle(ctx context.Context, c Caller, f frames.Frame, ferr *frames.Error, h handler, ok bool, pid string) (int, []byte) {
	if ferr != nil {
		return ferr.Code, frames.MarshalError(pid, ferr.Code, ferr.Message)
	}
	if !ok {
		return 400, frames.MarshalError(pid, 400, "unknown type "+quoteShort(f.Type))
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	typ, reply, err := h(ctx, r, c, f.Payload)
	cancel()
	if err != nil {
		code, msg := r.errorReply(c, f.Type, err)
		return code, frames.MarshalError(pid, code, msg)
	}
	return 200, frames.Marshal(pid, typ, reply)
}

// HandleRateLimited answers a frame over the rate limit with 429 and its pid when it can be
// read (the frame is not executed).
func (r *Router) HandleRateLimited(data []byte) []byte {
	f, ferr := frames.ParseFrame(data) // a valid pid is kept even when the rest is bad
	pid := f.PID
	if pid == "" {
		pid = r.cfg.NewPID()
	}
	label := unknownType
	if _, ok := r.handlers[f.Type]; ok && ferr == nil {
		label = f.Type
	}
	ctx := context.Background()
	r.cfg.Metrics.FrameReceived(ctx, label)
	r.cfg.Metrics.FrameResult(ctx, label, 429)
	return frames.MarshalError(pid, 429, "rate limit exceeded")
}

func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	b := []byte{'"'}
	for _, c := range []byte(s) {
		if c < 0x20 || c == '"' || c == '\\' {
			c = '?'
		}
		b = append(b, c)
	}
	return string(append(b, '"'))
}

// errorReply maps a handler error to an ERROR_NOTIFICATION code and message. Input errors
// carry their own message; Connect errors of the client-facing codes forward the service's
// message (services keep those user-safe and naming the field); everything else gets a
// generic message and a log line, so internals never reach a client. A service that could
// not be reached or whose connection broke mid-call is 503 whatever code Connect gave it
// (rpc.IsUnavailable): a stream cut short comes back as "internal", yet it is no bug.
func (r *Router) errorReply(c Caller, typ string, err error) (int, string) {
	var fe *frames.Error
	if errors.As(err, &fe) {
		return fe.Code, fe.Message
	}
	code := connect.CodeOf(err)
	msg := ""
	var ce *connect.Error
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	switch code {
	case connect.CodeInvalidArgument:
		return 400, orDefault(msg, "invalid request")
	case connect.CodeOutOfRange:
		return 413, orDefault(msg, "text too long")
	case connect.CodeNotFound:
		return 404, orDefault(msg, "not found")
	case connect.CodePermissionDenied:
		return 403, orDefault(msg, "not an accepted contact")
	case connect.CodeAlreadyExists:
		return 409, orDefault(msg, "already exists")
	case connect.CodeResourceExhausted:
		return 429, "rate limited"
	case connect.CodeDeadlineExceeded:
		r.cfg.Log.Warn("request timed out", "user_id", c.UserID, "type", typ, "err", err)
		return 504, "request timed out"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return 504, "request timed out"
	}
	if errors.Is(err, sendbatch.ErrBusy) {
		// The edge's own push-back under overload: thousands a second, not worth a log
		// line each (the error replies' metric counts them).
		return 503, "server busy: try again shortly"
	}
	if rpc.IsUnavailable(err) {
		r.cfg.Log.Warn("service unavailable", "user_id", c.UserID, "type", typ, "err", err)
		return 503, "service unavailable"
	}
	r.cfg.Log.Error("request failed", "user_id", c.UserID, "type", typ, "code", code.String(), "err", err)
	return 500, "internal error"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// sessionRefreshed is SESSION_REFRESHED's payload.
type sessionRefreshed struct {
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expiresAt"`
}

// handleRefreshSession answers REFRESH_SESSION (no payload) with SESSION_REFRESHED.
func handleRefreshSession(ctx context.Context, _ *Router, c Caller, _ []byte) (string, any, error) {
	if c.Session == nil {
		return "", nil, connect.NewError(connect.CodeUnavailable, errors.New("session refresh unavailable"))
	}
	token, expiresAt, err := c.Session.RefreshSession(ctx)
	if err != nil {
		return "", nil, err
	}
	return frames.TypeSessionRefreshed, sessionRefreshed{Token: token, ExpiresAt: expiresAt}, nil
}
