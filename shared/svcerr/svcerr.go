// Package svcerr is the error every service's domain returns and the one mapping of errors
// to Connect codes every service's handler uses on the way out.
//
// A service's domain package (internal/chat, internal/profile, ...) declares its errors
// as *Error values (type aliases keep its own names: chat.Error, chat.CodeInvalid): a code
// and a message safe to show to clients. Its handler (internal/server) sends every error
// through one function, toConnect, which calls Mapper.ToConnect. So every service answers
// a failure the same way: domain errors keep their code and message; a deadline or a
// cancellation says so; a peer service or the database out of reach is unavailable, never
// internal; anything else is logged and answered as a bare internal error, so that no SQL
// or internal detail reaches a client.
package svcerr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/charla/charla/shared/sqldb"
)

// Code classifies a domain error; Mapper maps each to one Connect code.
type Code int

// Codes, in the order docs/protocol.md §3.5 checks them.
const (
	CodeInvalid         Code = iota + 1 // invalid_argument: bad input; the message names the field
	CodeTooLong                         // out_of_range: a value over its limit
	CodeNotFound                        // not_found
	CodeForbidden                       // permission_denied
	CodeConflict                        // already_exists: a taken unique value
	CodeUnauthenticated                 // unauthenticated: an unknown, revoked or expired session
	CodeUnavailable                     // unavailable: something this service needs did not answer
)

// connectCodes maps each Code to its Connect code.
var connectCodes = map[Code]connect.Code{
	CodeInvalid:         connect.CodeInvalidArgument,
	CodeTooLong:         connect.CodeOutOfRange,
	CodeNotFound:        connect.CodeNotFound,
	CodeForbidden:       connect.CodePermissionDenied,
	CodeConflict:        connect.CodeAlreadyExists,
	CodeUnauthenticated: connect.CodeUnauthenticated,
	CodeUnavailable:     connect.CodeUnavailable,
}

// ConnectCode returns the Connect code of c (internal for an unknown code).
func (c Code) ConnectCode() connect.Code {
	if code, ok := connectCodes[c]; ok {
		return code
	}
	return connect.CodeInternal
}

// Error is a domain error whose message is safe to show to clients: it never carries SQL,
// driver errors or tokens.
type Error struct {
	Code    Code
	Message string
}

// Error returns the client-safe message.
func (e *Error) Error() string { return e.Message }

// Errorf returns a domain error with a client-safe message.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the domain error in err's chain, or 0.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// PeerError is a failed call to another service: unavailable to the client, which is
// told which service, and logged with the cause.
type PeerError struct {
	// Service is the peer's short name ("profile").
	Service string
	// Err is the cause.
	Err error
}

// Peer wraps err, from a call to the service named service ("profile"), as a *PeerError.
func Peer(service string, err error) error { return &PeerError{Service: service, Err: err} }

// Error names the service and the cause (for logs only).
func (e *PeerError) Error() string { return e.Service + " service: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *PeerError) Unwrap() error { return e.Err }

// Mapper turns any error of one service into the Connect error a client sees.
type Mapper struct {
	// Service is the service's short name ("chat"), in the answer when it is unavailable.
	Service string
	// Log gets the failures that are not the client's (nil discards them).
	Log *slog.Logger
}

// ToConnect maps err, returned while doing op, to a Connect error; attrs (key-value
// pairs such as "user_id", id) go with what it logs. In order: a domain error keeps its
// code and message (an unavailable one is logged with its cause); a deadline is deadline_exceeded; a cancellation (or ctx ended) is
// canceled; a *PeerError is unavailable naming the peer; the database or another backing
// service out of reach (sqldb.IsUnavailable) is unavailable; anything else is internal.
func (m Mapper) ToConnect(ctx context.Context, op string, err error, attrs ...any) error {
	log := m.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var de *Error
	if errors.As(err, &de) {
		if de.Code == CodeUnavailable { // never the client's doing: keep the cause
			log.WarnContext(ctx, op+": unavailable", with(attrs, "err", err)...)
		}
		return connect.NewError(de.Code.ConnectCode(), errors.New(de.Message))
	}
	if errors.Is(err, context.DeadlineExceeded) || connect.CodeOf(err) == connect.CodeDeadlineExceeded {
		log.WarnContext(ctx, op+": deadline exceeded", with(attrs, "err", err)...)
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	}
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return connect.NewError(connect.CodeCanceled, errors.New("canceled"))
	}
	var pe *PeerError
	if errors.As(err, &pe) {
		log.ErrorContext(ctx, op+": peer failed", with(attrs, "service", pe.Service, "err", pe.Err)...)
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s service unavailable", pe.Service))
	}
	if sqldb.IsUnavailable(err) {
		log.WarnContext(ctx, op+": backing service unavailable", with(attrs, "err", err)...)
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s service temporarily unavailable", m.Service))
	}
	log.ErrorContext(ctx, op+" failed", with(attrs, "err", err)...)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

// with returns attrs followed by kv, never writing into attrs' array.
func with(attrs []any, kv ...any) []any {
	return append(attrs[:len(attrs):len(attrs)], kv...)
}
