package rpc

import (
	"errors"

	"connectrpc.com/connect"
)

// The batch calls (profile.ResolveSessions, presence.ConnectMany and DisconnectMany)
// answer each item with the error its single call would have returned, as an error_code
// (the Connect code's name) and an error_message. ItemError writes one on the service's
// side; ItemErr reads it back on the caller's, so both sides agree on the encoding in one
// place.

// ItemError is the code name and message of err, an error already mapped to Connect (a
// handler's toConnect): what the single call would have answered. An error that is not a
// *connect.Error is answered as internal, with nothing of its text.
func ItemError(err error) (code, message string) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return connect.CodeInternal.String(), "internal error"
	}
	return ce.Code().String(), ce.Message()
}

// ItemErr is the error an item's code name and message stand for: a *connect.Error that
// connect.CodeOf reads as it reads the single call's. A code this side does not know (a
// newer service) is connect.CodeUnknown.
func ItemErr(code, message string) error {
	var c connect.Code
	if err := c.UnmarshalText([]byte(code)); err != nil {
		c = connect.CodeUnknown
	}
	return connect.NewError(c, errors.New(message))
}
