// Package logging builds the log/slog loggers every process uses: JSON or text, a level,
// and the same context on every line: component, user id, and pid (the frame's request id,
// docs/protocol.md §3.2).
//
// Levels: debug (message flow details), info (important system events),
// warn (recoverable anomalies), error (needs attention); "success" is info with
// outcome=success (see Success).
//
// Every logger New returns also:
//   - adds trace_id and span_id from the context of the *Context methods when a span is
//     active, so a log line leads to its trace;
//   - writes "[REDACTED]" for the value of any attribute whose key names a credential
//     (token, password, secret, authorization, cookie) and for any value starting with
//     "Bearer ", so a token handed to a logger by mistake never reaches the output;
//   - drops the value of "text" attributes (message texts) at info level and above, where
//     users' messages must not appear.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Attribute keys shared by every process, so lines can be searched the same way.
const (
	// KeyComponent is the component that logged: "edge", "chat", "HANDLER_CHAT"...
	KeyComponent = "component"
	// KeyUserID is the user the line is about.
	KeyUserID = "user_id"
	// KeyPID is the client's request id (a frame's pid, docs/protocol.md §3.2).
	KeyPID = "pid"
	// KeyOutcome is "success" on Success lines.
	KeyOutcome = "outcome"
	// KeyTraceID and KeySpanID identify the active span.
	KeyTraceID = "trace_id"
	KeySpanID  = "span_id"
	// KeyText is a message text; it is kept at debug level only.
	KeyText = "text"
)

// Redacted replaces the value of a credential attribute.
const Redacted = "[REDACTED]"

// Options choose the format and the lowest level written.
type Options struct {
	// Format is "json" or "text".
	Format string
	// Level is "debug", "info", "warn" or "error".
	Level string
}

// ParseLevel turns a level name into a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("expected debug, info, warn or error")
}

// New returns the root logger writing to w.
func New(w io.Writer, opts Options) (*slog.Logger, error) {
	level, err := ParseLevel(opts.Level)
	if err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	ho := &slog.HandlerOptions{Level: level, ReplaceAttr: redact}
	var h slog.Handler
	switch opts.Format {
	case "", "text":
		h = slog.NewTextHandler(w, ho)
	case "json":
		h = slog.NewJSONHandler(w, ho)
	default:
		return nil, fmt.Errorf("LOG_FORMAT: expected json or text, got %q", opts.Format)
	}
	return slog.New(NewHandler(h)), nil
}

// Component returns log with the component attribute set.
func Component(log *slog.Logger, component string) *slog.Logger {
	return log.With(KeyComponent, component)
}

// UserID is the user_id attribute.
func UserID(id int64) slog.Attr { return slog.Int64(KeyUserID, id) }

// PID is the pid attribute: the client's request id.
func PID(pid string) slog.Attr { return slog.String(KeyPID, pid) }

// Success logs an operation that completed, at info level with outcome=success.
func Success(ctx context.Context, log *slog.Logger, msg string, args ...any) {
	log.InfoContext(ctx, msg, append([]any{KeyOutcome, "success"}, args...)...)
}

// Discard is a logger that writes nothing, for tests.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// NewHandler wraps h so records get trace_id and span_id from their context and lose
// message texts at info level and above. New uses it; use it for handlers of your own.
func NewHandler(h slog.Handler) slog.Handler {
	if th, ok := h.(*handler); ok {
		return th
	}
	return &handler{next: h}
}

type handler struct {
	next slog.Handler
}

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	hideText := r.Level >= slog.LevelInfo && hasText(r)
	if !sc.IsValid() && !hideText {
		return h.next.Handle(ctx, r)
	}
	if hideText {
		nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == KeyText {
				a.Value = slog.StringValue("[omitted at " + r.Level.String() + "]")
			}
			nr.AddAttrs(a)
			return true
		})
		r = nr
	} else {
		r = r.Clone()
	}
	if sc.IsValid() {
		r.AddAttrs(slog.String(KeyTraceID, sc.TraceID().String()), slog.String(KeySpanID, sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

func hasText(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == KeyText
		return !found
	})
	return found
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(attrs)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name)}
}

// redact is the ReplaceAttr of New's handlers.
func redact(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindGroup {
		return a
	}
	if SensitiveKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	if a.Value.Kind() == slog.KindString && hasPrefixFold(a.Value.String(), "bearer ") {
		return slog.String(a.Key, Redacted)
	}
	return a
}

var sensitive = []string{"token", "password", "passwd", "secret", "authorization", "cookie", "credential"}

// SensitiveKey reports whether an attribute key names a credential, ignoring case.
func SensitiveKey(key string) bool {
	for _, s := range sensitive {
		if containsFold(key, s) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case ASCII word sub, ignoring case,
// without allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if hasPrefixFold(s[i:], sub) {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, lowerPrefix string) bool {
	if len(s) < len(lowerPrefix) {
		return false
	}
	for j := 0; j < len(lowerPrefix); j++ {
		c := s[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lowerPrefix[j] {
			return false
		}
	}
	return true
}
