// Package bus carries events between the processes of a deployment: an in-process bus for
// the one-process mode and NATS (github.com/nats-io/nats.go) when several processes run.
// Delivery is at most once: a subscriber that is not listening when a message is published
// never sees it. Durable state lives in the databases; the bus only wakes edges up.
package bus

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// Handler receives one message. It runs on the bus's delivery goroutine and must not block;
// calls for one subscription never overlap.
type Handler func(data []byte)

// Bus publishes messages on subjects and delivers them to the subscribers of each subject.
type Bus interface {
	// Publish sends data to every current subscriber of subject.
	Publish(ctx context.Context, subject string, data []byte) error
	// Subscribe calls h for every message on subject until the subscription is closed.
	Subscribe(subject string, h Handler) (Subscription, error)
	// Close releases the bus; subscriptions stop.
	Close() error
}

// Subscription is an active subscription.
type Subscription interface {
	// Unsubscribe stops delivery; h is not called after it returns.
	Unsubscribe() error
}

// Open returns the bus named by BUS_URL: empty for in-process, nats://host:port for NATS.
func Open(url string, opts ...Option) (Bus, error) {
	switch {
	case url == "":
		return NewInProcess(), nil
	case strings.HasPrefix(url, "nats://"):
		return ConnectNATS(url, opts...)
	default:
		return nil, fmt.Errorf("BUS_URL: want empty (in-process) or nats://host:port, got %q", url)
	}
}

// InProcess is a Bus inside one process. Publish calls handlers synchronously.
type InProcess struct {
	mu   sync.RWMutex
	subs map[string]map[*inprocSub]struct{}
}

// NewInProcess returns an empty in-process bus.
func NewInProcess() *InProcess {
	return &InProcess{subs: make(map[string]map[*inprocSub]struct{})}
}

type inprocSub struct {
	bus     *InProcess
	subject string
	mu      sync.Mutex // held while h runs, so Unsubscribe waits for a running delivery
	h       Handler
}

// Publish delivers data to every subscriber of subject before returning.
func (b *InProcess) Publish(_ context.Context, subject string, data []byte) error {
	b.mu.RLock()
	subs := make([]*inprocSub, 0, len(b.subs[subject]))
	for s := range b.subs[subject] {
		subs = append(subs, s)
	}
	b.mu.RUnlock()
	for _, s := range subs {
		s.mu.Lock()
		if s.h != nil {
			s.h(data)
		}
		s.mu.Unlock()
	}
	return nil
}

// Subscribe registers h for subject.
func (b *InProcess) Subscribe(subject string, h Handler) (Subscription, error) {
	s := &inprocSub{bus: b, subject: subject, h: h}
	b.mu.Lock()
	if b.subs[subject] == nil {
		b.subs[subject] = make(map[*inprocSub]struct{})
	}
	b.subs[subject][s] = struct{}{}
	b.mu.Unlock()
	return s, nil
}

// Close drops every subscription.
func (b *InProcess) Close() error {
	b.mu.Lock()
	b.subs = make(map[string]map[*inprocSub]struct{})
	b.mu.Unlock()
	return nil
}

func (s *inprocSub) Unsubscribe() error {
	s.bus.mu.Lock()
	delete(s.bus.subs[s.subject], s)
	if len(s.bus.subs[s.subject]) == 0 {
		delete(s.bus.subs, s.subject)
	}
	s.bus.mu.Unlock()
	s.mu.Lock()
	s.h = nil
	s.mu.Unlock()
	return nil
}

// NATS is a Bus over a NATS server.
type NATS struct {
	conn *nats.Conn
}

// ConnectNATS connects to the NATS server at url, reconnecting forever when it drops;
// disconnects and reconnects are logged and counted (see observe.go).
func ConnectNATS(url string, opts ...Option) (*NATS, error) {
	observers, started := observeNATS(opts)
	conn, err := nats.Connect(url, append([]nats.Option{nats.Name("charla"), nats.MaxReconnects(-1)}, observers...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	started(conn)
	return &NATS{conn: conn}, nil
}

// Conn returns the NATS connection, for users of NATS beyond plain subjects (the JetStream
// event log). Close closes it.
func (b *NATS) Conn() *nats.Conn { return b.conn }

// Publish sends data on subject.
func (b *NATS) Publish(_ context.Context, subject string, data []byte) error {
	if err := b.conn.Publish(subject, data); err != nil {
		return fmt.Errorf("publish on %s: %w", subject, err)
	}
	return nil
}

// Subscribe calls h for every message on subject.
func (b *NATS) Subscribe(subject string, h Handler) (Subscription, error) {
	sub, err := b.conn.Subscribe(subject, func(m *nats.Msg) { h(m.Data) })
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	// Make sure the server knows the subscription before the caller relies on it.
	if err := b.conn.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	return sub, nil
}

// Close drains pending messages and closes the connection.
func (b *NATS) Close() error {
	return b.conn.Drain()
}
