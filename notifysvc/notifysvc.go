// Package notifysvc is the notify service. Its Connect handler is mounted by the one-process
// binary (cmd/charla) and by its own process (cmd/notifysvc) alike.
package notifysvc

import (
	"context"

	"connectrpc.com/connect"

	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/svc"
)

// EventService is the name this service's events carry on the bus.
const EventService = "notify"

// Service implements notifyv1connect.NotificationServiceHandler.
type Service struct {
	notifyv1connect.UnimplementedNotificationServiceHandler
	deps svc.Deps
}

var _ notifyv1connect.NotificationServiceHandler = (*Service)(nil)

// New builds the service from its dependencies.
func New(ctx context.Context, deps svc.Deps) (*Service, error) {
	return &Service{deps: deps}, nil
}

// RPC returns the Connect handler to mount.
func (s *Service) RPC() rpc.Service {
	path, h := notifyv1connect.NewNotificationServiceHandler(s, s.deps.HandlerOptions...)
	return rpc.Service{Name: notifyv1connect.NotificationServiceName, Path: path, Handler: h}
}

// Close stops background work.
func (s *Service) Close() error { return nil }

// StreamEvents forwards the events for the users held by one edge.
func (s *Service) StreamEvents(ctx context.Context, req *connect.Request[notifyv1.StreamEventsRequest], stream *connect.ServerStream[notifyv1.StreamEventsResponse]) error {
	return fanout.Serve(ctx, s.deps.Bus, s.deps.Log, EventService, req.Msg.GetEdgeId(),
		func() *notifyv1.StreamEventsResponse { return new(notifyv1.StreamEventsResponse) }, stream.Send)
}
