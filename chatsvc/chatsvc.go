// Package chatsvc is the chat service. Its Connect handler is mounted by the one-process
// binary (cmd/charla) and by its own process (cmd/chatsvc) alike.
package chatsvc

import (
	"context"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/svc"
)

// EventService is the name this service's events carry on the bus.
const EventService = "chat"

// Service implements chatv1connect.ChatServiceHandler.
type Service struct {
	chatv1connect.UnimplementedChatServiceHandler
	deps svc.Deps
}

var _ chatv1connect.ChatServiceHandler = (*Service)(nil)

// New builds the service from its dependencies.
func New(ctx context.Context, deps svc.Deps) (*Service, error) {
	return &Service{deps: deps}, nil
}

// RPC returns the Connect handler to mount.
func (s *Service) RPC() rpc.Service {
	path, h := chatv1connect.NewChatServiceHandler(s, s.deps.HandlerOptions...)
	return rpc.Service{Name: chatv1connect.ChatServiceName, Path: path, Handler: h}
}

// Close stops background work.
func (s *Service) Close() error { return nil }

// StreamEvents forwards the events for the users held by one edge.
func (s *Service) StreamEvents(ctx context.Context, req *connect.Request[chatv1.StreamEventsRequest], stream *connect.ServerStream[chatv1.StreamEventsResponse]) error {
	return fanout.Serve(ctx, s.deps.Bus, s.deps.Log, EventService, req.Msg.GetEdgeId(),
		func() *chatv1.StreamEventsResponse { return new(chatv1.StreamEventsResponse) }, stream.Send)
}
