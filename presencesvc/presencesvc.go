// Package presencesvc is the presence service. Its Connect handler is mounted by the one-process
// binary (cmd/charla) and by its own process (cmd/presencesvc) alike.
package presencesvc

import (
	"context"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/svc"
)

// EventService is the name this service's events carry on the bus.
const EventService = "presence"

// Service implements presencev1connect.PresenceServiceHandler.
type Service struct {
	presencev1connect.UnimplementedPresenceServiceHandler
	deps svc.Deps
}

var _ presencev1connect.PresenceServiceHandler = (*Service)(nil)

// New builds the service from its dependencies.
func New(ctx context.Context, deps svc.Deps) (*Service, error) {
	return &Service{deps: deps}, nil
}

// RPC returns the Connect handler to mount.
func (s *Service) RPC() rpc.Service {
	path, h := presencev1connect.NewPresenceServiceHandler(s, s.deps.HandlerOptions...)
	return rpc.Service{Name: presencev1connect.PresenceServiceName, Path: path, Handler: h}
}

// Close stops background work.
func (s *Service) Close() error { return nil }

// StreamEvents forwards the events for the users held by one edge.
func (s *Service) StreamEvents(ctx context.Context, req *connect.Request[presencev1.StreamEventsRequest], stream *connect.ServerStream[presencev1.StreamEventsResponse]) error {
	return fanout.Serve(ctx, s.deps.Bus, s.deps.Log, EventService, req.Msg.GetEdgeId(),
		func() *presencev1.StreamEventsResponse { return new(presencev1.StreamEventsResponse) }, stream.Send)
}
