// Package profilesvc is the profile service. Its Connect handler is mounted by the one-process
// binary (cmd/charla) and by its own process (cmd/profilesvc) alike.
package profilesvc

import (
	"context"

	"connectrpc.com/connect"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/svc"
)

// EventService is the name this service's events carry on the bus.
const EventService = "profile"

// Service implements profilev1connect.ProfileServiceHandler.
type Service struct {
	profilev1connect.UnimplementedProfileServiceHandler
	deps svc.Deps
}

var _ profilev1connect.ProfileServiceHandler = (*Service)(nil)

// New builds the service from its dependencies.
func New(ctx context.Context, deps svc.Deps) (*Service, error) {
	return &Service{deps: deps}, nil
}

// RPC returns the Connect handler to mount.
func (s *Service) RPC() rpc.Service {
	path, h := profilev1connect.NewProfileServiceHandler(s, s.deps.HandlerOptions...)
	return rpc.Service{Name: profilev1connect.ProfileServiceName, Path: path, Handler: h}
}

// Close stops background work.
func (s *Service) Close() error { return nil }

// StreamEvents forwards the events for the users held by one edge.
func (s *Service) StreamEvents(ctx context.Context, req *connect.Request[profilev1.StreamEventsRequest], stream *connect.ServerStream[profilev1.StreamEventsResponse]) error {
	return fanout.Serve(ctx, s.deps.Bus, s.deps.Log, EventService, req.Msg.GetEdgeId(),
		func() *profilev1.StreamEventsResponse { return new(profilev1.StreamEventsResponse) }, stream.Send)
}
