package profile

import (
	"errors"
	"fmt"
)

// Code classifies a domain error; the server maps each code to one Connect code.
type Code int

const (
	// Invalid is bad input; the message names the field.
	Invalid Code = iota + 1
	// NotFound is an unknown user.
	NotFound
	// Conflict is a taken unique value (userName, email).
	Conflict
	// Unauthenticated is an unknown, revoked or expired session token.
	Unauthenticated
	// Unavailable is a peer service that could not answer.
	Unavailable
)

// Error is a domain error whose message is safe to show to clients: it never carries SQL,
// driver errors or tokens.
type Error struct {
	Code Code
	Msg  string
}

// Error returns the client-safe message.
func (e *Error) Error() string { return e.Msg }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of a domain error in err's chain, or 0.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
