package bus

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// Option configures Open and ConnectNATS.
type Option func(*options)

type options struct {
	log *slog.Logger
	mp  metric.MeterProvider
}

// WithLogger is where a NATS bus logs its disconnects, reconnects and close; the default
// is slog.Default().
func WithLogger(log *slog.Logger) Option {
	return func(o *options) { o.log = log }
}

// WithMeterProvider is where a NATS bus records its connection metrics; the default is
// the OpenTelemetry global, which telemetry.Setup installs (before or after Open).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.mp = mp }
}

// defaultPingTimeout bounds a Ping whose context has no deadline.
const defaultPingTimeout = 2 * time.Second

// natsObserver logs and counts the state changes of one NATS connection:
//
//	charla_bus_nats_connected         NATS connections of this process now connected (0 or 1)
//	charla_bus_nats_disconnects_total connections lost (not counting a deliberate close)
//	charla_bus_nats_reconnects_total  connections re-established
//
// The counters exist at 0 from the first connection on, so alerts see them before they move.
type natsObserver struct {
	log         *slog.Logger
	up          atomic.Bool
	server      atomic.Pointer[string] // the server last connected to, without credentials
	connected   metric.Int64UpDownCounter
	disconnects metric.Int64Counter
	reconnects  metric.Int64Counter
}

// observeNATS returns the nats.Options that report connection state, and a function to call
// with the connection once it is made.
func observeNATS(opts []Option) ([]nats.Option, func(*nats.Conn)) {
	o := options{log: slog.Default(), mp: otel.GetMeterProvider()}
	for _, opt := range opts {
		opt(&o)
	}
	m := o.mp.Meter("github.com/charla/charla/shared/bus")
	ob := &natsObserver{log: o.log}
	// Instrument creation fails only on invalid names; a failed one records nothing.
	ob.connected, _ = m.Int64UpDownCounter("charla.bus.nats.connected",
		metric.WithDescription("NATS connections of this process that are connected now."))
	ob.disconnects, _ = m.Int64Counter("charla.bus.nats.disconnects",
		metric.WithDescription("NATS connections lost (a deliberate close is not counted)."))
	ob.reconnects, _ = m.Int64Counter("charla.bus.nats.reconnects",
		metric.WithDescription("NATS connections re-established after a loss."))
	return []nats.Option{
		nats.DisconnectErrHandler(ob.disconnected),
		nats.ReconnectHandler(ob.reconnected),
		nats.ClosedHandler(ob.closed),
	}, ob.started
}

func (ob *natsObserver) started(nc *nats.Conn) {
	ob.remember(nc)
	ctx := context.Background()
	ob.disconnects.Add(ctx, 0)
	ob.reconnects.Add(ctx, 0)
	if !ob.up.Swap(true) {
		ob.connected.Add(ctx, 1)
	}
}

// disconnected runs when the connection drops, and also (with err nil) when it is closed.
func (ob *natsObserver) disconnected(nc *nats.Conn, err error) {
	if !ob.up.Swap(false) {
		return
	}
	ob.connected.Add(context.Background(), -1)
	if err == nil && nc.IsClosed() {
		return // closing on purpose: closed logs it
	}
	var server string
	if p := ob.server.Load(); p != nil {
		server = *p
	}
	// Logged before counted: whoever sees the count also finds the line.
	ob.log.Warn("NATS disconnected; reconnecting", "server", server, "err", err)
	ob.disconnects.Add(context.Background(), 1)
}

func (ob *natsObserver) remember(nc *nats.Conn) {
	s := nc.ConnectedUrlRedacted()
	ob.server.Store(&s)
}

func (ob *natsObserver) reconnected(nc *nats.Conn) {
	ob.remember(nc)
	ob.log.Info("NATS reconnected", "server", nc.ConnectedUrlRedacted())
	ob.reconnects.Add(context.Background(), 1)
	if !ob.up.Swap(true) {
		ob.connected.Add(context.Background(), 1)
	}
}

func (ob *natsObserver) closed(nc *nats.Conn) {
	if ob.up.Swap(false) {
		ob.connected.Add(context.Background(), -1)
	}
	if err := nc.LastError(); err != nil {
		ob.log.Warn("NATS connection closed", "err", err)
		return
	}
	ob.log.Debug("NATS connection closed")
}

// Ping checks that the bus can carry messages now: for NATS, that the connection is up
// and the server answers a round trip within ctx (which should have a deadline; without
// one, 2 s).
func (b *NATS) Ping(ctx context.Context) error {
	if s := b.conn.Status(); s != nats.CONNECTED {
		return fmt.Errorf("NATS connection is %s", s)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultPingTimeout)
		defer cancel()
	}
	if err := b.conn.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("NATS round trip: %w", err)
	}
	return nil
}

// Ping always succeeds: an in-process bus cannot be unreachable.
func (b *InProcess) Ping(context.Context) error { return nil }

// Pinger is implemented by both buses; health checks use it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Ping checks b when it can be checked (see NATS.Ping); a Bus of another kind (a test
// fake) is reported as reachable unless it implements Pinger.
func Ping(ctx context.Context, b Bus) error {
	if p, ok := b.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}
