package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

var (
	// ErrSlowConsumer is returned by Send when the connection's send queue is
	// full; the connection is being closed with 1008.
	ErrSlowConsumer = errors.New("hub: slow consumer")
	// ErrClosed is returned by Send once the connection is closing.
	ErrClosed = errors.New("hub: connection closed")
)

// HTTPError refuses a handshake before the upgrade. AuthenticateAndGetUserData
// returns it to choose the status; the client receives
// {"code": Status, "message": Message} as JSON.
type HTTPError struct {
	Status  int
	Message string
	// Reason is a short code for logs and metrics ("invalid_token"); empty means
	// ReasonUnauthorized. It is a label value: a fixed set, never client input.
	Reason string
	// Err is the cause, logged with the refusal (never sent to the client); may be nil.
	Err error
}

func (e *HTTPError) Error() string {
	s := "hub: http " + strconv.Itoa(e.Status) + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *HTTPError) Unwrap() error { return e.Err }

// Reasons of the handshakes the hub refuses itself (see Callbacks.OnHandshakeRefused).
const (
	// ReasonShuttingDown: Shutdown has started (503).
	ReasonShuttingDown = "shutting_down"
	// ReasonOrigin: the Origin header is not allowed (403).
	ReasonOrigin = "origin"
	// ReasonUnauthorized: AuthenticateAndGetUserData failed without an *HTTPError
	// carrying a reason (401).
	ReasonUnauthorized = "unauthorized"
	// ReasonBadUpgrade: the request is not a valid WebSocket upgrade (gorilla answers 4xx).
	ReasonBadUpgrade = "bad_upgrade"
)

// RefusalReasons are the reasons the hub itself gives; the application adds its own
// through HTTPError.Reason.
var RefusalReasons = []string{ReasonShuttingDown, ReasonOrigin, ReasonUnauthorized, ReasonBadUpgrade}

// CloseError is the reason OnDisconnect receives when the server closed the
// connection: the close code sent and, in Err, the cause when there is one
// (ErrSlowConsumer for a full send queue).
type CloseError struct {
	Code   int
	Reason string
	Err    error
}

func (e *CloseError) Error() string {
	s := fmt.Sprintf("hub: closed by server with %d", e.Code)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap lets errors.Is(err, ErrSlowConsumer) see the cause.
func (e *CloseError) Unwrap() error { return e.Err }

// writeHTTPError answers a refused handshake with the JSON body of docs/protocol.md §2.3.
func writeHTTPError(w http.ResponseWriter, status int, message string) {
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{status, message})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
