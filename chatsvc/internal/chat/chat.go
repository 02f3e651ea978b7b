// Package chat holds the chat service's domain: contacts, messages and their statuses, the
// input rules of docs/protocol.md §4.2–§4.6 and the errors the handler maps to Connect codes.
package chat

import (
	"strings"
	"unicode/utf8"

	"github.com/charla/charla/shared/svcerr"
)

// Status is the delivery status of a message; it only moves forward.
type Status int

// Statuses, as stored in ChatMessage.StatusId.
const (
	StatusSent      Status = 1 // sent_to_server: stored by the server
	StatusDelivered Status = 2 // delivered: written to a recipient connection or fetched
	StatusRead      Status = 3 // read: MESSAGES_READ by the recipient
)

// Contact states, as stored in Contact.Status.
const (
	ContactAccepted = "accepted"
	ContactRemoved  = "removed"
)

// Limits of docs/protocol.md §4.3 and §4.5.
const (
	MaxTextRunes         = 2000
	MaxClientMessageID   = 64
	DefaultPageLimit     = 50
	MaxPageLimit         = 200
	MaxDeliveredIDs      = 1000
	MaxDeliveryReceipts  = 1000 // receipts of one MarkDelivered call (internal RPC)
	MaxDeliveredPerCall  = 5000 // ids of one MarkDelivered call, all receipts together
	MaxSendBatch         = 500  // messages of one SendMessages call (internal RPC)
	TypingRelayInterval  = 3000 // ms between relayed ONs of one sender in one chat
	TypingExpiresAfterMs = 6000 // how long a relayed ON lasts unless renewed
)

// Contact is a pair of users and their chat. UserID1 < UserID2.
type Contact struct {
	ID       int64 // the chat id
	UserID1  int64
	UserID2  int64
	Status   string
	Accepted bool
}

// Has reports whether user is one of the pair.
func (c Contact) Has(user int64) bool { return c.UserID1 == user || c.UserID2 == user }

// Other returns the participant that is not user.
func (c Contact) Other(user int64) int64 {
	if c.UserID1 == user {
		return c.UserID2
	}
	return c.UserID1
}

// Pair orders two user ids the way Contact stores them.
func Pair(a, b int64) (int64, int64) {
	if a < b {
		return a, b
	}
	return b, a
}

// Message is one stored chat message.
type Message struct {
	ID              int64
	ChatID          int64
	FromUserID      int64
	ToUserID        int64
	Text            string
	CreatedAt       int64 // Unix ms
	Status          Status
	ClientMessageID string // "" when none
}

// ChatSummary is the stored part of a ChatInfo: the chat, the other user, the newest
// message and the caller's unread count.
type ChatSummary struct {
	ChatID        int64
	OtherUserID   int64
	LastMessage   string
	LastMessageTs int64
	UnreadCount   int64
}

// Error is the chat service's domain error (shared/svcerr): a code and a message safe to
// show to clients. The handler maps it to a Connect code in one place.
type Error = svcerr.Error

// Code classifies a domain error.
type Code = svcerr.Code

// Codes, in the order docs/protocol.md §3.5 checks them.
const (
	CodeInvalid     = svcerr.CodeInvalid     // invalid_argument
	CodeTooLong     = svcerr.CodeTooLong     // out_of_range
	CodeNotFound    = svcerr.CodeNotFound    // not_found
	CodeForbidden   = svcerr.CodeForbidden   // permission_denied
	CodeConflict    = svcerr.CodeConflict    // already_exists
	CodeUnavailable = svcerr.CodeUnavailable // unavailable
)

// Errorf returns a domain error with a client-safe message.
func Errorf(code Code, format string, args ...any) error { return svcerr.Errorf(code, format, args...) }

// CodeOf returns the domain code of err, or 0 when err is not a domain error.
func CodeOf(err error) Code { return svcerr.CodeOf(err) }

// Errors shared by several operations.
var (
	ErrChatNotFound = &Error{Code: CodeNotFound, Message: "chat not found"}
	ErrUserNotFound = &Error{Code: CodeNotFound, Message: "user not found"}
	ErrNotContact   = &Error{Code: CodeForbidden, Message: "not an accepted contact"}
)

// NormalizeText trims text as docs/protocol.md §4.3 says and checks its length.
func NormalizeText(text string) (string, error) {
	t := strings.TrimSpace(text)
	if t == "" {
		return "", Errorf(CodeInvalid, "text: must not be empty")
	}
	if n := utf8.RuneCountInString(t); n > MaxTextRunes {
		return "", Errorf(CodeTooLong, "text: %d characters, at most %d allowed", n, MaxTextRunes)
	}
	return t, nil
}

// CheckClientMessageID checks an optional idempotency key ("" means none).
func CheckClientMessageID(id string) error {
	if len(id) > MaxClientMessageID {
		return Errorf(CodeInvalid, "clientMessageId: at most %d bytes", MaxClientMessageID)
	}
	return nil
}

// CheckUserID checks a user id given in a request.
func CheckUserID(field string, id int64) error {
	if id <= 0 {
		return Errorf(CodeInvalid, "%s: must be a positive id", field)
	}
	return nil
}

// PageLimit applies the default and bounds of GET_CHAT_MESSAGES.
func PageLimit(limit int32) (int, error) {
	if limit == 0 {
		return DefaultPageLimit, nil
	}
	if limit < 1 || limit > MaxPageLimit {
		return 0, Errorf(CodeInvalid, "limit: must be 1-%d", MaxPageLimit)
	}
	return int(limit), nil
}
