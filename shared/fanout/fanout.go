// Package fanout moves server-to-client events from the service that raises them to the
// edges that hold the target users' connections, without asking anyone where those users
// are.
//
// Two kinds of events:
//
//   - Sequenced events (every event of docs/protocol.md §5 but TYPING_INDICATOR) are
//     appended to the user event log (shared/eventlog), one record per target user, which
//     gives each its per-user seq and keeps it for resume. Every edge follows the whole log
//     through the presence service's StreamUserEvents (ServeLog) and writes each record to
//     the connections it holds of that user. The log is totally ordered, so an edge sees a
//     user's records in seq order, and after a broken stream it continues from the last
//     position it saw: no event is lost between the two.
//   - Unsequenced events (TYPING_INDICATOR, SessionEnded, a connection to close) are
//     ephemeral: they go on the bus, to every edge (subject charla.events.<service>) or to
//     one (charla.events.<service>.<edgeID>), and reach the edge through that service's
//     StreamEvents (Serve). Lost when no stream listens, which is what they are for.
//
// Event messages are the StreamEventsResponse types of the service packages; fanout fills
// their user_ids and trace_context fields by name and reads exclude_connection_id, so
// every such message must have them.
//
// # The subscribed marker
//
// The first message of every stream Serve answers is an empty event: no event (oneof) set,
// no user_ids. Serve sends it once its bus subscription is active, so from then on no event
// for the edge is lost. An edge counts the stream as up only after this marker: a Connect
// server stream returns to its caller only with its first message, so without it an edge
// could not tell an established stream from one still being set up. Edges ignore every
// event with no oneof set, the marker included. ServeLog's first message plays the same
// role and also tells the position the stream starts after.
package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/eventlog"
)

var edgeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidEdgeID reports whether id is usable as an edge id (it becomes part of a bus subject).
func ValidEdgeID(id string) bool { return edgeIDPattern.MatchString(id) }

// Subject is the bus subject of one service's unsequenced events for one edge.
func Subject(service, edgeID string) string {
	return "charla.events." + service + "." + edgeID
}

// BroadcastSubject is the bus subject of one service's unsequenced events for every edge.
func BroadcastSubject(service string) string { return "charla.events." + service }

// OnlineLookup tells which of some users have no connection anywhere.
type OnlineLookup interface {
	Offline(ctx context.Context, userIDs []int64) ([]int64, error)
}

// Publisher publishes one service's events.
type Publisher struct {
	bus       bus.Bus
	log       eventlog.Log
	service   string
	online    OnlineLookup
	sequenced func(proto.Message) bool
	backlog   *backlog // events kept for an unreachable log (ErrKept)
}

// Option configures a Publisher.
type Option func(*Publisher)

// WithOnline makes Publish report the target users that are offline (chat raises a
// notification for them instead).
func WithOnline(o OnlineLookup) Option { return func(p *Publisher) { p.online = o } }

// WithSequenced tells which events are sequenced (appended to the user event log); the
// others are broadcast on the bus. By default every event is sequenced.
func WithSequenced(f func(proto.Message) bool) Option { return func(p *Publisher) { p.sequenced = f } }

// NewPublisher returns a publisher for service (a short name such as "chat").
func NewPublisher(b bus.Bus, log eventlog.Log, service string, opts ...Option) *Publisher {
	p := &Publisher{bus: b, log: log, service: service, backlog: newBacklog()}
	for _, o := range opts {
		o(p)
	}
	return p
}

// appendRetry is the first pause between attempts to append an event the log refused
// (its bus is reconnecting); it doubles up to maxAppendRetry until ctx ends.
const (
	appendRetry    = 20 * time.Millisecond
	maxAppendRetry = time.Second
)

// Publish raises event for userIDs. A sequenced event is appended to each user's history
// (retried while the log is unreachable, until ctx ends; then kept and appended when the
// log is back, and the error wraps ErrKept); an unsequenced one is broadcast
// to every edge. With WithOnline, it returns the users that have no connection anywhere,
// so callers can fall back (an offline notification). event is not modified.
func (p *Publisher) Publish(ctx context.Context, event proto.Message, userIDs ...int64) (offline []int64, err error) {
	return p.PublishOnce(ctx, "", event, userIDs...)
}

// PublishOnce is Publish with an idempotency key for a sequenced event (eventlog.Event.Key):
// a user who got an event with the same key less than eventlog.DedupeWindow ago gets no
// second record. A service that cannot tell whether an earlier attempt published (the
// process that stored a message died before announcing it, and a retry reached another
// replica) announces again under the same key. An empty key is Publish.
func (p *Publisher) PublishOnce(ctx context.Context, key string, event proto.Message, userIDs ...int64) (offline []int64, err error) {
	if len(userIDs) == 0 {
		return nil, nil
	}
	users := slices.Clone(userIDs)
	slices.Sort(users)
	users = slices.Compact(users)
	if p.online != nil {
		offline, err = p.online.Offline(ctx, users)
		if err != nil {
			// Not knowing who is online changes only the offline fallback; the event is
			// still published.
			err = fmt.Errorf("look up presence of %d users: %w", len(users), err)
		}
	}
	sequenced := p.sequenced == nil || p.sequenced(event)
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	// event is not modified: a copy carries the trace context and, on the bus, the users.
	// Without either (no tracing, a sequenced event) there is nothing to copy for.
	msg := event
	if len(carrier) > 0 || !sequenced {
		msg = proto.Clone(event)
		setTraceContext(msg, carrier)
		if !sequenced {
			setUsers(msg, users)
		}
	}
	data, merr := proto.Marshal(msg)
	if merr != nil {
		return offline, fmt.Errorf("marshal %s event: %w", p.service, merr)
	}
	if !sequenced {
		return offline, errors.Join(err, p.bus.Publish(ctx, BroadcastSubject(p.service), data))
	}
	ev := eventlog.Event{Service: p.service, Exclude: excludeOf(msg), Data: data, Key: key}
	aerr := p.appendRetrying(ctx, ev, users)
	switch {
	case aerr == nil, errors.Is(aerr, eventlog.ErrClosed):
		// Appended, or this process's log is closed (shutting down): nothing to keep.
	case p.backlog.keep(p, ev, users):
		// The fact the event announces is stored; dropping its event would leave the
		// users' histories without it for good. Keep it for when the log is back.
		aerr = fmt.Errorf("%w (%w)", aerr, ErrKept)
	default:
		aerr = fmt.Errorf("%w (not kept: %d events already wait, or the publisher is closed)", aerr, MaxBacklog)
	}
	return offline, errors.Join(err, aerr)
}

func (p *Publisher) appendRetrying(ctx context.Context, ev eventlog.Event, users []int64) error {
	wait := appendRetry
	for {
		_, err := p.log.Append(ctx, ev, users)
		if err == nil {
			return nil
		}
		if errors.Is(err, eventlog.ErrClosed) {
			// This process is shutting down: no retry can succeed.
			return fmt.Errorf("append %s event for %d users: %w", p.service, len(users), err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("append %s event for %d users: %w", p.service, len(users), err)
		case <-t.C:
		}
		wait = min(2*wait, maxAppendRetry)
	}
}

// PublishToEdge sends an unsequenced event to one edge (for example: close a connection).
func (p *Publisher) PublishToEdge(ctx context.Context, edgeID string, event proto.Message, userIDs ...int64) error {
	msg := proto.Clone(event)
	setUsers(msg, userIDs)
	data, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("marshal %s event: %w", p.service, err)
	}
	return p.bus.Publish(ctx, Subject(p.service, edgeID), data)
}

func excludeOf(msg proto.Message) string {
	m := msg.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("exclude_connection_id")
	if fd == nil {
		return ""
	}
	return m.Get(fd).String()
}

func setUsers(msg proto.Message, users []int64) {
	m := msg.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("user_ids")
	if fd == nil {
		panic(fmt.Sprintf("fanout: %s has no user_ids field", m.Descriptor().FullName()))
	}
	list := m.Mutable(fd).List()
	list.Truncate(0)
	for _, u := range users {
		list.Append(protoreflect.ValueOfInt64(u))
	}
}

func setTraceContext(msg proto.Message, carrier propagation.MapCarrier) {
	if len(carrier) == 0 {
		return
	}
	m := msg.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("trace_context")
	if fd == nil {
		return
	}
	mp := m.Mutable(fd).Map()
	for k, v := range carrier {
		mp.Set(protoreflect.ValueOfString(k).MapKey(), protoreflect.ValueOfString(v))
	}
}

// StreamBuffer is how many events may wait for a slow stream before it is cut off.
const StreamBuffer = 4096

// ErrStreamOverflow ends a stream that fell StreamBuffer events behind; the edge reconnects.
var ErrStreamOverflow = errors.New("event stream fell too far behind")

// Serve forwards the unsequenced events of service for edgeID (and those for every edge) to send until ctx ends or send fails.
// Its errors are Connect errors, ready to return from a StreamEvents handler.
// newEvent returns an empty event message to unmarshal into. The first message sent is
// newEvent() itself, empty, once the bus subscription is active: the subscribed marker of
// the package doc. A stream that falls StreamBuffer events behind ends with
// ErrStreamOverflow rather than holding up the bus.
func Serve[E proto.Message](ctx context.Context, b bus.Bus, log *slog.Logger, service, edgeID string, newEvent func() E, send func(E) error) error {
	if !ValidEdgeID(edgeID) {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("edge_id: want 1-64 of [A-Za-z0-9_-], got %q", edgeID))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan []byte, StreamBuffer)
	overflow := make(chan struct{})
	overflowed := false // only touched by the handler, under mu
	var mu sync.Mutex   // the two subscriptions' handlers may overlap
	handler := func(data []byte) {
		mu.Lock()
		defer mu.Unlock()
		select {
		case queue <- data:
		case <-ctx.Done():
		default:
			if !overflowed {
				overflowed = true
				close(overflow)
			}
		}
	}
	for _, subject := range []string{Subject(service, edgeID), BroadcastSubject(service)} {
		sub, err := b.Subscribe(subject, handler)
		if err != nil {
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("subscribe to %s events of edge %s: %w", service, edgeID, err))
		}
		defer sub.Unsubscribe() //nolint:errcheck // nothing to do about it on the way out
	}
	// The subscription is active: tell the edge (see "The subscribed marker"). Events that
	// arrive meanwhile wait in queue, so they follow the marker.
	if err := send(newEvent()); err != nil {
		return fmt.Errorf("send %s subscribed marker to edge %s: %w", service, edgeID, err)
	}
	log.Info("event stream opened", "edge_id", edgeID)
	defer log.Info("event stream closed", "edge_id", edgeID)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-overflow:
			return connect.NewError(connect.CodeResourceExhausted, ErrStreamOverflow)
		case data := <-queue:
			ev := newEvent()
			if err := proto.Unmarshal(data, ev); err != nil {
				log.Error("drop undecodable event", "edge_id", edgeID, "err", err)
				continue
			}
			if err := send(ev); err != nil {
				return fmt.Errorf("send %s event to edge %s: %w", service, edgeID, err)
			}
		}
	}
}

// ServeLog follows the user event log for one edge: from after (nil: from now), every
// record, in batches, until ctx ends or send fails. The first message sent carries only
// StartedAfter (the marker). Its errors are Connect errors, ready to return from a
// StreamUserEvents handler: out_of_range when after is no longer held, resource_exhausted
// when the edge fell too far behind (it continues from its last position).
func ServeLog(ctx context.Context, l eventlog.Log, log *slog.Logger, edgeID string, after *uint64, send func(*presencev1.StreamUserEventsResponse) error) error {
	if !ValidEdgeID(edgeID) {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("edge_id: want 1-64 of [A-Za-z0-9_-], got %q", edgeID))
	}
	var startErr error
	err := l.Tail(ctx, after, func(start uint64) {
		startErr = send(&presencev1.StreamUserEventsResponse{StartedAfter: start})
		if startErr == nil {
			log.Info("user event stream opened", "edge_id", edgeID, "after", start)
		}
	}, func(recs []eventlog.Record) error {
		if startErr != nil {
			return startErr
		}
		out := &presencev1.StreamUserEventsResponse{Events: make([]*presencev1.UserEvent, len(recs))}
		for i := range recs {
			out.Events[i] = UserEventOf(recs[i])
		}
		return send(out)
	})
	if err == nil {
		err = startErr
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, eventlog.ErrTooOld):
		return connect.NewError(connect.CodeOutOfRange, err)
	case errors.Is(err, eventlog.ErrFellBehind):
		return connect.NewError(connect.CodeResourceExhausted, err)
	case ctx.Err() != nil:
		return nil
	default:
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("follow the user event log for edge %s: %w", edgeID, err))
	}
}

// ReadUserEvents answers presence's ReadUserEvents from l: a user's held events after a
// seq (or only the last seq). Its errors are Connect errors: invalid_argument for a bad
// user id, unavailable when the log cannot be read.
func ReadUserEvents(ctx context.Context, l eventlog.Log, req *presencev1.ReadUserEventsRequest) (*presencev1.ReadUserEventsResponse, error) {
	user := req.GetUserId()
	if user <= 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("user_id: must be a positive id"))
	}
	if req.GetLastOnly() {
		last, err := l.LastSeq(ctx, user)
		if err != nil {
			return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("read the last seq of user %d: %w", user, err))
		}
		return &presencev1.ReadUserEventsResponse{LastSeq: last, Complete: req.GetAfterSeq() == last}, nil
	}
	h, err := l.Read(ctx, user, req.GetAfterSeq())
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("read the event history of user %d: %w", user, err))
	}
	res := &presencev1.ReadUserEventsResponse{LastSeq: h.LastSeq, Complete: h.Complete}
	if h.Complete && !req.GetLastOnly() {
		res.Events = make([]*presencev1.UserEvent, len(h.Records))
		for i, r := range h.Records {
			res.Events[i] = UserEventOf(r)
		}
	}
	return res, nil
}

// UserEventOf converts a log record to its wire form.
func UserEventOf(r eventlog.Record) *presencev1.UserEvent {
	return &presencev1.UserEvent{
		Position: r.Position, UserId: r.UserID, Seq: r.Seq, Service: r.Service,
		ExcludeConnectionId: r.Exclude, TimeMs: r.TimeMs, Event: r.Data,
	}
}
