package profile

import "github.com/charla/charla/shared/svcerr"

// Error is the profile service's domain error (shared/svcerr): a code and a message safe
// to show to clients (never SQL, driver errors or tokens). The handler maps it to a
// Connect code in one place.
type Error = svcerr.Error

// Code classifies a domain error.
type Code = svcerr.Code

// Codes of the profile service's domain errors.
const (
	// CodeInvalid is bad input; the message names the field.
	CodeInvalid = svcerr.CodeInvalid
	// CodeNotFound is an unknown user.
	CodeNotFound = svcerr.CodeNotFound
	// CodeConflict is a taken unique value (userName, email).
	CodeConflict = svcerr.CodeConflict
	// CodeUnauthenticated is an unknown, revoked or expired session token.
	CodeUnauthenticated = svcerr.CodeUnauthenticated
	// CodeUnavailable is a peer service that could not answer.
	CodeUnavailable = svcerr.CodeUnavailable
)

// Errorf returns a domain error with a client-safe message.
func Errorf(code Code, format string, args ...any) error { return svcerr.Errorf(code, format, args...) }

// CodeOf returns the code of a domain error in err's chain, or 0.
func CodeOf(err error) Code { return svcerr.CodeOf(err) }
