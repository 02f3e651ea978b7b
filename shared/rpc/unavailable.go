package rpc

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"connectrpc.com/connect"
)

// IsUnavailable reports whether err means that a backing service (another service over
// Connect, the database, the bus) could not be reached or dropped the call, rather than
// that the request itself was wrong or the code failed: the failures PROTOCOL.md §3
// answers with 503, which the client may retry. It is the one classification of such
// causes; sqldb.IsUnavailable adds the database drivers' own, and every service's error
// mapping and the edge's router use one or the other.
//
// Unavailable are: a Connect error with code unavailable; a Connect error of code unknown,
// internal or canceled whose cause is a transport failure (the connection reset, refused or
// closed mid-call: Connect reports a response cut short as "unknown", as an internal
// protocol error, or, racing its own cleanup, as "canceled"); and those transport failures
// themselves, as a database driver returns them
// (connection refused or reset, an unexpected EOF, any failed network operation,
// driver.ErrBadConn, sql.ErrConnDone). Context errors are not: a deadline is 504 and a
// cancellation is the caller's own doing, and callers check them first.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		switch ce.Code() {
		case connect.CodeUnavailable:
			return true
		case connect.CodeUnknown, connect.CodeInternal, connect.CodeCanceled:
			// A server's own "internal error" carries no Go cause on the client side, so
			// only a transport failure underneath makes these unavailable. Connect may
			// also report a connection reset under a call as "canceled" (its own context
			// for the call ends with the failure); a cancellation by the caller wraps
			// context.Canceled instead and was answered above.
			return isTransport(ce.Unwrap())
		default:
			return false
		}
	}
	return isTransport(err)
}

// transportErrnos are the system errors of a peer that is down, restarting or unreachable.
var transportErrnos = []error{
	syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
	syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN, syscall.ETIMEDOUT,
}

// transportMessages are net/http's HTTP/2 transport errors that have no exported value or
// type: the connection to the server went away under a call, or before it (errNotSent).
var transportMessages = []string{
	errNotSent,
	"http2: client connection lost",
	"http2: client conn is closed",
	"http2: client connection force closed",
	"http2: server sent GOAWAY",
	"http2: Transport: cannot retry err",
}

// errNotSent is net/http's error for the first request of a new HTTP/2 connection that
// closed before the request could be written (a replica that accepted the connection as
// it shut down): the request was not sent.
const errNotSent = "http2: client conn could not be established"

// isTransport reports a failure of the connection to a peer, whatever protocol ran on it.
func isTransport(err error) bool {
	if err == nil {
		return false
	}
	for _, target := range transportErrnos {
		if errors.Is(err, target) {
			return true
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &opErr) || errors.As(err, &dnsErr) {
		return true
	}
	msg := err.Error()
	for _, m := range transportMessages {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}
