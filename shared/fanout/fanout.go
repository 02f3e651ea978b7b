// Package fanout moves server-to-client events from the service that raises them to the
// edges that hold the target users' connections.
//
// A service raises an event with Publisher.Publish: the publisher asks a RouteLookup
// (the presence service) which edges hold the target users, sets user_ids on one copy of the
// event per edge, and publishes it on the bus subject of that edge and service. Each edge
// keeps one StreamEvents call open per service; its handler calls Serve, which subscribes
// to the edge's subject and forwards every event on the stream. So an edge receives the
// events of the users it holds and nobody else's, whichever process raised them.
//
// Event messages are the StreamEventsResponse types of the service packages; fanout fills
// their user_ids and trace_context fields by name, so every such message must have them.
//
// # The subscribed marker
//
// The first message of every stream Serve answers is an empty event: no event (oneof) set,
// no user_ids. Serve sends it once its bus subscription is active, so from then on no event
// for the edge is lost. An edge counts the stream as up (and may tell the presence service
// that it holds connections) only after this marker: a Connect server stream returns to
// its caller only with its first message, so without it an edge could not tell an
// established stream from one still being set up, while events published meanwhile would
// go nowhere. Edges ignore every event with no oneof set, the marker included.
package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/charla/charla/shared/bus"
)

// RouteLookup tells which edges hold connections of the given users; users with no
// connection map to no edges (or are absent from the map).
type RouteLookup interface {
	Routes(ctx context.Context, userIDs []int64) (map[int64][]string, error)
}

// RouteLookupFunc adapts a function to RouteLookup.
type RouteLookupFunc func(ctx context.Context, userIDs []int64) (map[int64][]string, error)

// Routes calls f.
func (f RouteLookupFunc) Routes(ctx context.Context, userIDs []int64) (map[int64][]string, error) {
	return f(ctx, userIDs)
}

var edgeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidEdgeID reports whether id is usable as an edge id (it becomes part of a bus subject).
func ValidEdgeID(id string) bool { return edgeIDPattern.MatchString(id) }

// Subject is the bus subject of one service's events for one edge.
func Subject(service, edgeID string) string {
	return "charla.events." + service + "." + edgeID
}

// Publisher publishes one service's events.
type Publisher struct {
	bus     bus.Bus
	routes  RouteLookup
	service string
}

// NewPublisher returns a publisher for service (a short name such as "chat").
func NewPublisher(b bus.Bus, routes RouteLookup, service string) *Publisher {
	return &Publisher{bus: b, routes: routes, service: service}
}

// Publish sends event to every edge holding a connection of one of userIDs. It returns the
// users that have no connection anywhere, so callers can fall back (an offline notification).
// event is not modified.
func (p *Publisher) Publish(ctx context.Context, event proto.Message, userIDs ...int64) (unrouted []int64, err error) {
	if len(userIDs) == 0 {
		return nil, nil
	}
	users := slices.Clone(userIDs)
	slices.Sort(users)
	users = slices.Compact(users)
	routes, err := p.routes.Routes(ctx, users)
	if err != nil {
		return nil, fmt.Errorf("look up routes of %d users: %w", len(users), err)
	}
	byEdge := make(map[string][]int64)
	for _, u := range users {
		edges := routes[u]
		if len(edges) == 0 {
			unrouted = append(unrouted, u)
		}
		for _, e := range edges {
			byEdge[e] = append(byEdge[e], u)
		}
	}
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	var errs []error
	for edge, edgeUsers := range byEdge {
		msg := proto.Clone(event)
		setUsers(msg, edgeUsers)
		setTraceContext(msg, carrier)
		data, err := proto.Marshal(msg)
		if err != nil {
			return unrouted, fmt.Errorf("marshal %s event: %w", p.service, err)
		}
		if err := p.bus.Publish(ctx, Subject(p.service, edge), data); err != nil {
			errs = append(errs, err)
		}
	}
	return unrouted, errors.Join(errs...)
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

// Serve forwards the events of service for edgeID to send until ctx ends or send fails.
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
	overflowed := false // only touched by the handler, whose calls never overlap
	sub, err := b.Subscribe(Subject(service, edgeID), func(data []byte) {
		select {
		case queue <- data:
		case <-ctx.Done():
		default:
			if !overflowed {
				overflowed = true
				close(overflow)
			}
		}
	})
	if err != nil {
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("subscribe to %s events of edge %s: %w", service, edgeID, err))
	}
	defer sub.Unsubscribe() //nolint:errcheck // nothing to do about it on the way out
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
