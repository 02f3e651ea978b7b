// Package eventlog is the user event log of protocol version 2 (docs/protocol.md §8): every
// event addressed to a user gets the user's next sequence number and is kept in that user's
// history, so a client can resume after a reconnect and an edge can catch up after its
// event stream broke.
//
// The log is one totally ordered sequence of records, each for one user. A record's
// Position orders it in the whole log (an edge follows the log by position and, after a
// broken stream, continues from the last position it saw); its Seq orders it among the
// records of its user (consecutive from 1, whichever process appended it). Append is atomic
// per user under concurrent appenders in several processes: a user's seq n+1 is never
// written before n, and no two records of a user share a seq.
//
// Two implementations: Memory, for the one-process mode, and JetStream (NATS), for
// several processes, where the history outlives any one process. Both keep, per user, at
// least the newest MaxEvents records and every record younger than MaxAge (JetStream: see
// its doc for the one difference).
package eventlog

import (
	"context"
	"errors"
	"time"
)

// Record is one event for one user.
type Record struct {
	// Position is the record's place in the whole log (1, 2, ...; gaps are allowed).
	Position uint64
	// UserID is the user the event is addressed to.
	UserID int64
	// Seq is the record's place among the user's records: 1, 2, 3, ... without gaps.
	Seq uint64
	// Service is the short name of the service that raised the event ("chat", ...): it
	// tells which service's event message Data holds.
	Service string
	// Exclude is the connection that caused the event and does not get it live (it is
	// replayed to it like any other), or empty.
	Exclude string
	// TimeMs is when the record was appended, in Unix milliseconds.
	TimeMs int64
	// Data is the encoded event (the service's StreamEventsResponse), shared by the
	// records of one Append: never modify it.
	Data []byte
}

// Event is what Append stores for each of its users.
type Event struct {
	Service string
	Exclude string
	Data    []byte
	// Key, when not empty, makes the append idempotent: for a user who already got a
	// record of an event with the same Key less than DedupeWindow ago, Append stores
	// nothing and returns that earlier record. A publisher that cannot tell whether an
	// earlier attempt reached the log (its process died after storing the fact the event
	// announces, and another one announces it again) gives the event a key derived from
	// that fact, such as "chat.msg.<message id>".
	Key string
}

// DedupeWindow is how long a keyed event's key is remembered per user (Event.Key).
const DedupeWindow = time.Minute

// History is a user's records after some seq, as Read returns them.
type History struct {
	// Records are the held records with a seq above the one asked for, in seq order.
	Records []Record
	// LastSeq is the user's newest seq (0 if the user never had a record).
	LastSeq uint64
	// Complete is false when some record between the asked seq and LastSeq is no longer
	// held (or the asked seq is above LastSeq): the caller cannot replay without a gap.
	Complete bool
}

// Log is the user event log.
type Log interface {
	// Append gives each of users its next seq and stores a record of ev for each, in the
	// order given (duplicates are appended once). It returns the records.
	Append(ctx context.Context, ev Event, users []int64) ([]Record, error)
	// Tail calls h with every record whose position is above after, in position order,
	// then with every later record as it is appended, until ctx ends (it then returns nil)
	// or h fails (it returns that error). When after is nil, it starts at the head: the
	// first record passed is the first one appended after Tail began. started is called
	// once, before any call of h, with the position the tail starts after. A tail that
	// cannot start where asked because those records are gone returns ErrTooOld; one that
	// falls too far behind the appenders returns ErrFellBehind (start again from the last
	// position seen).
	Tail(ctx context.Context, after *uint64, started func(after uint64), h func([]Record) error) error
	// Read returns the records of user with a seq above after.
	Read(ctx context.Context, user int64, after uint64) (History, error)
	// LastSeq returns user's newest seq (0 if the user never had a record) without
	// reading any record: all a new connection needs, so a handshake costs one lookup,
	// not a read of the user's whole history.
	LastSeq(ctx context.Context, user int64) (uint64, error)
	// Close releases the log.
	Close() error
}

// ErrTooOld: a Tail asked to start at records that are no longer held.
var ErrTooOld = errors.New("eventlog: position no longer held")

// ErrFellBehind: a Tail's reader did not keep up and was cut off.
var ErrFellBehind = errors.New("eventlog: tail fell too far behind")

// Options bound the history.
type Options struct {
	// MaxEvents is how many of a user's newest records are held at least (RESUME_MAX_EVENTS).
	MaxEvents int
	// MaxAge is how long a record is held at least (RESUME_MAX_AGE).
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// JetStream names the stream and subjects when the log lives in JetStream (Open);
	// zero means the defaults. Tests sharing one NATS server give each test its own.
	JetStream JetStreamOptions
}

// Defaults of Options (docs/protocol.md §8.3).
const (
	DefaultMaxEvents = 1000
	DefaultMaxAge    = 5 * time.Minute
)

func (o Options) withDefaults() Options {
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// uniqueUsers returns users without duplicates, in first-seen order.
func uniqueUsers(users []int64) []int64 {
	if len(users) <= 1 {
		return users
	}
	out := make([]int64, 0, len(users))
	if len(users) > 16 {
		seen := make(map[int64]struct{}, len(users))
		for _, u := range users {
			if _, dup := seen[u]; !dup {
				seen[u] = struct{}{}
				out = append(out, u)
			}
		}
		return out
	}
	for _, u := range users {
		dup := false
		for _, o := range out {
			if o == u {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, u)
		}
	}
	return out
}

// ErrClosed is returned by every call on a log after its Close.
var ErrClosed = errors.New("eventlog: closed")
