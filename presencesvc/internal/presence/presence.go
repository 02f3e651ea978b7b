// Package presence holds the presence domain: who is online, the transitions between online
// and offline that contacts are told about, the validation of what edges send, and the
// errors the store and the server share.
package presence

import (
	"context"
	"fmt"

	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/svcerr"
)

// Presence is the stored state of one user.
type Presence struct {
	// UserID is the user.
	UserID int64
	// IsOnline tells whether the user holds a connection on a live edge (one whose lease
	// the sweeper has not ended).
	IsOnline bool
	// LastSeen is when the user last went offline, in Unix milliseconds; 0 if never.
	LastSeen int64
}

// Transition is the outcome of a change to a user's connections.
type Transition struct {
	// UserID is the user.
	UserID int64
	// Changed is true when IsOnline flipped; only then are contacts told.
	Changed bool
	// IsOnline is the state after the change.
	IsOnline bool
	// LastSeen is the stored LastSeen after the change (set when going offline).
	LastSeen int64
}

// BecameOnline reports a real offline → online transition.
func (t Transition) BecameOnline() bool { return t.Changed && t.IsOnline }

// BecameOffline reports a real online → offline transition.
func (t Transition) BecameOffline() bool { return t.Changed && !t.IsOnline }

// Connection is one connection to record or remove (Store.ConnectMany,
// Store.DisconnectMany).
type Connection struct {
	EdgeID       string
	UserID       int64
	ConnectionID string
}

// ConnectionResult is one connection's outcome in Store.ConnectMany or
// Store.DisconnectMany: the transition, or the error Connect (Disconnect) would have
// returned for it.
type ConnectionResult struct {
	Transition Transition
	Err        error
}

// Store keeps UserStatus, PresenceConnection and Edge. Every method that changes a user's
// connections does so in one transaction that holds that user's UserStatus row, so the
// transitions it reports are exact even when several processes share the database.
type Store interface {
	// Connect records a connection on a live edge (ErrEdgeNotFound otherwise). Idempotent
	// per connection id; ErrConnectionConflict if that id belongs to another user or edge.
	Connect(ctx context.Context, edgeID string, userID int64, connectionID string, now int64) (Transition, error)
	// ConnectMany records connections, one result per connection in their order, each
	// exactly what Connect would have returned for it had the connections been recorded
	// by Connect one after the other (a user's second connection does not become online).
	// A connection that fails leaves no trace and does not stop the others. The caller
	// holds the stripe locks of all their users.
	ConnectMany(ctx context.Context, conns []Connection, now int64) []ConnectionResult
	// Disconnect removes a connection. Idempotent.
	Disconnect(ctx context.Context, edgeID string, userID int64, connectionID string, now int64) (Transition, error)
	// DisconnectMany removes connections, one result per connection in their order, each
	// exactly what Disconnect would have returned for it had the connections been removed
	// by Disconnect one after the other (only a user's last connection makes them
	// offline; a connection already removed changes nothing). A connection that fails
	// leaves no trace and does not stop the others. The caller holds the stripe locks of
	// all their users.
	DisconnectMany(ctx context.Context, conns []Connection, now int64) []ConnectionResult
	// StartLease creates or renews an edge's lease, ending at leaseUntil, keeping the
	// connections the edge holds.
	StartLease(ctx context.Context, edgeID string, leaseUntil int64) error
	// Heartbeat extends a lease that EndLeases has not ended to leaseUntil, or returns
	// ErrEdgeNotFound.
	Heartbeat(ctx context.Context, edgeID string, leaseUntil int64) error
	// EndLeases ends the leases past their time (LeaseExpiresAt ≤ now) and returns how
	// many. Only this makes an edge dead: until then a late heartbeat renews its lease and
	// its connections count, so an edge kept from renewing by an outage of this service
	// or its database loses nothing.
	EndLeases(ctx context.Context, now int64) (int64, error)
	// DeadConnectionUsers lists up to limit users holding connections on dead edges.
	DeadConnectionUsers(ctx context.Context, limit int) ([]int64, error)
	// ReapUser removes the user's connections on dead edges and recomputes the state.
	ReapUser(ctx context.Context, userID int64, now int64) (Transition, error)
	// DeleteDeadEdges removes the rows of dead edges that hold no connection any more.
	DeleteDeadEdges(ctx context.Context) (int64, error)
	// Routes returns, for each asked user with connections on live edges, those edges.
	Routes(ctx context.Context, userIDs []int64) (map[int64][]string, error)
	// Presences returns the stored state of the asked users that have one.
	Presences(ctx context.Context, userIDs []int64) (map[int64]Presence, error)
}

// Error is the presence service's domain error (shared/svcerr): a code and a message safe
// to show to clients. The handler maps it to a Connect code in one place.
type Error = svcerr.Error

// Code classifies a domain error.
type Code = svcerr.Code

// Codes of the presence service's domain errors.
const (
	// CodeInvalid is bad input; the message names the field.
	CodeInvalid = svcerr.CodeInvalid
	// CodeNotFound is an edge without a live lease.
	CodeNotFound = svcerr.CodeNotFound
	// CodeConflict is a connection id already used by another connection.
	CodeConflict = svcerr.CodeConflict
)

// Errorf returns a domain error with a client-safe message.
func Errorf(code Code, format string, args ...any) error { return svcerr.Errorf(code, format, args...) }

// CodeOf returns the code of a domain error in err's chain, or 0.
func CodeOf(err error) Code { return svcerr.CodeOf(err) }

// ErrEdgeNotFound means the edge holds no live lease: it must register again.
var ErrEdgeNotFound = &Error{Code: CodeNotFound, Message: "edge holds no lease; register again"}

// ErrConnectionConflict means a connection id is already used by another user or edge.
var ErrConnectionConflict = &Error{Code: CodeConflict, Message: "connection_id is already used by another connection"}

// invalid returns a CodeInvalid error reading "field: reason".
func invalid(field, reason string) error { return Errorf(CodeInvalid, "%s: %s", field, reason) }

// MaxConnectionIDLen bounds connection ids, which edges generate.
const MaxConnectionIDLen = 128

// MaxConnectMany bounds the connections of one ConnectMany request (presence.v1).
const MaxConnectMany = 256

// MaxDisconnectMany bounds the connections of one DisconnectMany request (presence.v1).
const MaxDisconnectMany = MaxConnectMany

// MaxUserIDs bounds the ids of one GetPresence or GetRoutes request.
const MaxUserIDs = 10000

// ValidateEdgeID checks an edge id: it becomes part of a bus subject.
func ValidateEdgeID(id string) error {
	if !fanout.ValidEdgeID(id) {
		return invalid("edge_id", "want 1-64 of [A-Za-z0-9_-]")
	}
	return nil
}

// ValidateUserID checks one user id.
func ValidateUserID(id int64) error {
	if id <= 0 {
		return invalid("user_id", "want a positive id")
	}
	return nil
}

// ValidateConnectionID checks a connection id.
func ValidateConnectionID(id string) error {
	if id == "" || len(id) > MaxConnectionIDLen {
		return invalid("connection_id", fmt.Sprintf("want 1-%d bytes", MaxConnectionIDLen))
	}
	return nil
}

// ValidateUserIDs checks the ids of a batch lookup.
func ValidateUserIDs(ids []int64) error {
	if len(ids) > MaxUserIDs {
		return invalid("user_ids", fmt.Sprintf("at most %d ids", MaxUserIDs))
	}
	for _, id := range ids {
		if id <= 0 {
			return invalid("user_ids", "want positive ids")
		}
	}
	return nil
}

// ValidateConnectMany checks the size of a ConnectMany request; its connections are
// checked one by one (ValidateConnection), each failing on its own.
func ValidateConnectMany(n int) error { return validateBatch(n, MaxConnectMany) }

// ValidateDisconnectMany checks the size of a DisconnectMany request; its connections are
// checked one by one (ValidateConnection), each failing on its own.
func ValidateDisconnectMany(n int) error { return validateBatch(n, MaxDisconnectMany) }

// validateBatch checks that a batch request carries at most limit connections.
func validateBatch(n, limit int) error {
	if n > limit {
		return invalid("connections", fmt.Sprintf("at most %d per request, got %d", limit, n))
	}
	return nil
}

// ValidateConnection checks the fields of Connect and Disconnect, in request order.
func ValidateConnection(edgeID string, userID int64, connectionID string) error {
	if err := ValidateEdgeID(edgeID); err != nil {
		return err
	}
	if err := ValidateUserID(userID); err != nil {
		return err
	}
	return ValidateConnectionID(connectionID)
}
