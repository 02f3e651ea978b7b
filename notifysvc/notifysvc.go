// Package notifysvc is the notify service. Its Connect handler is mounted by the one-process
// binary (cmd/charla) and by its own process (cmd/notifysvc) alike.
//
// The service owns the Notification table. New migrates it, builds the handler
// (internal/server) over the store (internal/store), and starts the retention pruner
// (internal/retention) on a goroutine that Close stops and waits for.
package notifysvc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/notifysvc/internal/retention"
	"github.com/charla/charla/notifysvc/internal/server"
	"github.com/charla/charla/notifysvc/internal/store"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/svc"
)

// EventService is the name this service's events carry on the bus.
const EventService = "notify"

// Settings the service declares (Configure).
const (
	// EnvRetentionMaxAge is the maximum age of a notification, a Go duration (2160h).
	EnvRetentionMaxAge = "NOTIFY_RETENTION_MAX_AGE"
	// EnvRetentionMaxPerUser is how many notifications each user keeps, newest first.
	EnvRetentionMaxPerUser = "NOTIFY_RETENTION_MAX_PER_USER"
)

// maxRequestBytes bounds a request body: the largest valid CreateNotification is about
// 4 KiB of payload plus 8 KiB of message and title, so this leaves ample room.
const maxRequestBytes = 256 << 10

// Options tune the service. Zero values take the defaults.
type Options struct {
	// RetentionMaxAge is how long a notification is kept (default 90 days).
	RetentionMaxAge time.Duration
	// RetentionMaxPerUser is how many notifications each user keeps (default 1000).
	RetentionMaxPerUser int
	// PruneInterval is the time between retention runs (default 5 minutes).
	PruneInterval time.Duration
	// PruneBatch bounds the rows one retention DELETE removes (default 500).
	PruneBatch int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Configure declares NOTIFY_RETENTION_MAX_AGE and NOTIFY_RETENTION_MAX_PER_USER on cfg
// and returns the constructor that builds the service with them (svc.Configure).
func Configure(cfg *config.Loader) svc.Constructor {
	maxAge := cfg.Duration(EnvRetentionMaxAge, retention.DefaultMaxAge, "notifications older than this are deleted (a Go duration; 2160h is 90 days)")
	maxPerUser := cfg.Int(EnvRetentionMaxPerUser, retention.DefaultMaxPerUser, 1, 1_000_000, "each user keeps at most this many notifications, newest first")
	return func(ctx context.Context, deps svc.Deps) (svc.Service, error) {
		return NewWithOptions(ctx, deps, Options{RetentionMaxAge: *maxAge, RetentionMaxPerUser: *maxPerUser})
	}
}

// Service implements notifyv1connect.NotificationServiceHandler: the RPCs of
// internal/server plus StreamEvents.
type Service struct {
	*server.Server
	deps   svc.Deps
	opts   Options
	pruner *retention.Pruner
	pub    *fanout.Publisher // its Close flushes events kept for an unreachable log

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

var _ notifyv1connect.NotificationServiceHandler = (*Service)(nil)

// New builds the service from its dependencies with the default options.
func New(ctx context.Context, deps svc.Deps) (*Service, error) {
	return NewWithOptions(ctx, deps, Options{})
}

// NewWithOptions builds the service from its dependencies and opts: it migrates the
// schema and starts the retention pruner. deps.Peers must hold the profile client.
func NewWithOptions(ctx context.Context, deps svc.Deps, opts Options) (*Service, error) {
	if deps.DB == nil || deps.Bus == nil || deps.Log == nil {
		return nil, errors.New("notifysvc: deps need DB, Bus and Log")
	}
	if deps.Peers == nil || deps.Peers.Profile == nil {
		return nil, errors.New("notifysvc: deps need the profile client")
	}
	if deps.Events == nil {
		return nil, errors.New("notifysvc: deps need the user event log")
	}
	if err := store.Migrate(ctx, deps.DB); err != nil {
		return nil, fmt.Errorf("notifysvc: %w", err)
	}
	st := store.New(deps.DB)
	pub := fanout.NewPublisher(deps.Bus, deps.Events, EventService)
	pruner := retention.New(st, retention.Config{
		MaxAge:     opts.RetentionMaxAge,
		MaxPerUser: opts.RetentionMaxPerUser,
		Interval:   opts.PruneInterval,
		Batch:      opts.PruneBatch,
		Now:        opts.Now,
	}, deps.Log)
	s := &Service{
		deps: deps,
		opts: opts,
		Server: server.New(server.Config{
			Store:     st,
			Users:     server.NewProfileUsers(deps.Peers.Profile),
			Publisher: pub,
			Log:       deps.Log,
			Now:       opts.Now,
			OnCreate:  pruner.Touch,
		}),
		pruner: pruner,
		pub:    pub,
		done:   make(chan struct{}),
	}
	// The pruner outlives New's ctx (often a start-up context); Close stops it.
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	go func() {
		defer close(s.done)
		pruner.Run(runCtx)
	}()
	return s, nil
}

// RPC returns the Connect handler to mount.
func (s *Service) RPC() rpc.Service {
	path, h := notifyv1connect.NewNotificationServiceHandler(s, s.deps.HandlerOptionsWith(
		connect.WithReadMaxBytes(maxRequestBytes),
	)...)
	return rpc.Service{Name: notifyv1connect.NotificationServiceName, Path: path, Handler: h}
}

// Close stops the retention pruner and waits for it, then gives events kept for an
// unreachable event log (fanout.ErrKept) a last chance. It is safe to call more than once.
func (s *Service) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done
		err = s.pub.Close()
	})
	return err
}

// StreamEvents forwards the events for the users held by one edge.
func (s *Service) StreamEvents(ctx context.Context, req *connect.Request[notifyv1.StreamEventsRequest], stream *connect.ServerStream[notifyv1.StreamEventsResponse]) error {
	return fanout.Serve(ctx, s.deps.Bus, s.deps.Log, EventService, req.Msg.GetEdgeId(),
		func() *notifyv1.StreamEventsResponse { return new(notifyv1.StreamEventsResponse) }, stream.Send)
}
