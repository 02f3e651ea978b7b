// Package notify holds the notification domain: the stored notification, the rules a new
// one must satisfy, the page query, and the errors the store and the server share.
// It has no dependencies on the database or the wire format.
package notify

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/charla/charla/shared/svcerr"
)

// Limits of docs/protocol.md §4.11 and §7.2.
const (
	// MaxTypeBytes bounds Type, which is 1–64 of [a-z0-9_.-].
	MaxTypeBytes = 64
	// MaxTitleRunes bounds Title in code points.
	MaxTitleRunes = 200
	// MaxMessageRunes bounds Message in code points.
	MaxMessageRunes = 2000
	// MaxPayloadBytes bounds the serialized (compact JSON) payload.
	MaxPayloadBytes = 4096
	// DefaultLimit is the page size when the caller gives none.
	DefaultLimit = 50
	// MaxLimit is the largest page size.
	MaxLimit = 200
)

// EmptyPayload is the payload of a notification created without one.
const EmptyPayload = "{}"

// Notification is one stored notification.
type Notification struct {
	// ID increases with creation time; it is also the paging cursor.
	ID int64
	// UserID is the owner.
	UserID int64
	// Type is the kind, such as contact_added or new_message.
	Type string
	// Title is 1–200 code points.
	Title string
	// Message is at most 2000 code points.
	Message string
	// Payload is a JSON object in compact form; EmptyPayload when none.
	Payload string
	// CreatedAt is Unix milliseconds.
	CreatedAt int64
	// IsRead tells whether the owner marked it read.
	IsRead bool
}

// ListQuery asks for one page of a user's notifications, newest first.
type ListQuery struct {
	// UserID is the owner.
	UserID int64
	// Limit is the page size, already defaulted and checked (1–MaxLimit).
	Limit int
	// BeforeID is an exclusive upper bound on ids; 0 for none.
	BeforeID int64
	// UnreadOnly leaves out read notifications.
	UnreadOnly bool
}

// Store keeps notifications and each user's unread counter (internal/store implements it
// on SQLite and MySQL). Errors the caller must tell apart are ErrNotFound; anything else is
// an internal failure or the database out of reach.
type Store interface {
	// Create stores n (its ID and IsRead are ignored) and returns it with its id.
	Create(ctx context.Context, n Notification) (Notification, error)
	// List returns one page of a user's notifications, newest first.
	List(ctx context.Context, q ListQuery) ([]Notification, error)
	// UnreadCount returns the user's unread notifications.
	UnreadCount(ctx context.Context, userID int64) (int64, error)
	// MarkRead marks one of the user's notifications read and returns how many rows
	// changed (0 when it already was); ErrNotFound when it is not the user's.
	MarkRead(ctx context.Context, userID, id int64) (int64, error)
	// MarkAllRead marks every notification of the user read and returns how many changed.
	MarkAllRead(ctx context.Context, userID int64) (int64, error)
}

// Error is the notification service's domain error (shared/svcerr): a code and a message
// safe to show to clients. The handler maps it to a Connect code in one place.
type Error = svcerr.Error

// Code classifies a domain error.
type Code = svcerr.Code

// Codes of the notification service's domain errors.
const (
	// CodeInvalid is bad input; the message names the field.
	CodeInvalid = svcerr.CodeInvalid
	// CodeNotFound is an unknown user or notification.
	CodeNotFound = svcerr.CodeNotFound
	// CodeUnavailable is a service this one depends on that did not answer.
	CodeUnavailable = svcerr.CodeUnavailable
)

// Errorf returns a domain error with a client-safe message.
func Errorf(code Code, format string, args ...any) error { return svcerr.Errorf(code, format, args...) }

// CodeOf returns the code of a domain error in err's chain, or 0.
func CodeOf(err error) Code { return svcerr.CodeOf(err) }

// ErrNotFound is returned (wrapped) for an unknown user, or a notification that does not
// exist or is not the caller's: the two are indistinguishable on purpose.
var ErrNotFound = &Error{Code: CodeNotFound, Message: "not found"}

// ErrUnavailable is returned (wrapped, with the cause) when the profile service does not
// answer.
var ErrUnavailable = &Error{Code: CodeUnavailable, Message: "profile service unavailable"}

// Invalid returns a CodeInvalid error reading "field: reason", field named as in the
// proto (user_id, type, title, ...).
func Invalid(field, format string, args ...any) error {
	return Errorf(CodeInvalid, "%s: %s", field, fmt.Sprintf(format, args...))
}

// ValidateUserID checks an owner id.
func ValidateUserID(field string, id int64) error {
	if id <= 0 {
		return Invalid(field, "must be a positive user id, got %d", id)
	}
	return nil
}

// ValidateNew checks everything about a new notification that needs no lookup, in the
// order of the request's fields. Payload must already be in compact JSON form.
func ValidateNew(n Notification) error {
	if err := ValidateUserID("user_id", n.UserID); err != nil {
		return err
	}
	if err := ValidateType(n.Type); err != nil {
		return err
	}
	switch {
	case !utf8.ValidString(n.Title):
		return Invalid("title", "must be valid UTF-8")
	case strings.TrimSpace(n.Title) == "":
		return Invalid("title", "is required")
	case utf8.RuneCountInString(n.Title) > MaxTitleRunes:
		return Invalid("title", "must be at most %d characters, got %d", MaxTitleRunes, utf8.RuneCountInString(n.Title))
	}
	switch {
	case !utf8.ValidString(n.Message):
		return Invalid("message", "must be valid UTF-8")
	case utf8.RuneCountInString(n.Message) > MaxMessageRunes:
		return Invalid("message", "must be at most %d characters, got %d", MaxMessageRunes, utf8.RuneCountInString(n.Message))
	}
	if len(n.Payload) > MaxPayloadBytes {
		return Invalid("payload", "must be at most %d bytes as JSON, got %d", MaxPayloadBytes, len(n.Payload))
	}
	return nil
}

// ValidateType checks a notification type: 1–64 of [a-z0-9_.-].
func ValidateType(t string) error {
	if t == "" {
		return Invalid("type", "is required")
	}
	if len(t) > MaxTypeBytes {
		return Invalid("type", "must be at most %d characters, got %d", MaxTypeBytes, len(t))
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return Invalid("type", "must use only a-z, 0-9, '_', '.' and '-'")
		}
	}
	return nil
}

// PageLimit turns a requested page size into the one to use: 0 means DefaultLimit, and
// anything outside 1–MaxLimit is invalid.
func PageLimit(limit int32) (int, error) {
	switch {
	case limit == 0:
		return DefaultLimit, nil
	case limit < 1 || limit > MaxLimit:
		return 0, Invalid("limit", "must be between 1 and %d, got %d", MaxLimit, limit)
	}
	return int(limit), nil
}
