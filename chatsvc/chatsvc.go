// Package chatsvc is the chat service. Its Connect handler is mounted by the one-process
// binary (cmd/charla) and by its own process (cmd/chatsvc) alike.
//
// The work is done in internal packages: chat (domain rules), store (SQL for SQLite and
// MySQL, migrations, the group-commit writer), typing (in-memory typing state) and server
// (the Connect handler).
package chatsvc

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/chatsvc/internal/server"
	"github.com/charla/charla/chatsvc/internal/store"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/svc"
)

// EventService is the name this service's events carry on the bus.
const EventService = "chat"

// Service implements chatv1connect.ChatServiceHandler.
type Service struct {
	*server.Server
	deps   svc.Deps
	online *fanout.OnlineCache
	pub    *fanout.Publisher
}

var _ chatv1connect.ChatServiceHandler = (*Service)(nil)

// New migrates the chat tables and builds the service from its dependencies.
func New(ctx context.Context, deps svc.Deps) (*Service, error) {
	if deps.DB == nil || deps.Bus == nil || deps.Events == nil || deps.Peers == nil {
		return nil, errors.New("chat service: DB, Bus, Events and Peers are required")
	}
	st := store.New(deps.DB)
	if err := st.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("chat service: %w", err)
	}
	online, err := fanout.NewOnlineCache(deps.Bus, deps.Peers.Presence)
	if err != nil {
		return nil, fmt.Errorf("chat service: %w", err)
	}
	pub := fanout.NewPublisher(deps.Bus, deps.Events, EventService, fanout.WithOnline(online),
		fanout.WithSequenced(func(ev proto.Message) bool {
			// TYPING_INDICATOR is ephemeral: no seq, never replayed (docs/protocol.md §8.2).
			e, ok := ev.(*chatv1.StreamEventsResponse)
			return !ok || e.GetTypingIndicator() == nil
		}))
	srv := server.New(server.Config{
		Store:     st,
		Profiles:  deps.Peers.Profile,
		Presence:  deps.Peers.Presence,
		Notifier:  deps.Peers.Notify,
		Publisher: pub,
		Log:       deps.Log,
	})
	return &Service{Server: srv, deps: deps, online: online, pub: pub}, nil
}

// Configure declares the chat service's own settings on cfg (it has none) and returns its
// constructor (svc.Configure).
func Configure(*config.Loader) svc.Constructor {
	return func(ctx context.Context, deps svc.Deps) (svc.Service, error) { return New(ctx, deps) }
}

// RPC returns the Connect handler to mount.
func (s *Service) RPC() rpc.Service {
	path, h := chatv1connect.NewChatServiceHandler(s, s.deps.HandlerOptions...)
	return rpc.Service{Name: chatv1connect.ChatServiceName, Path: path, Handler: h}
}

// Close stores the queued messages (announcing them), then gives events kept for an
// unreachable event log (fanout.ErrKept) a last chance, and stops background work.
func (s *Service) Close() error {
	err := s.Server.Close()
	return errors.Join(err, s.pub.Close(), s.online.Close())
}

// StreamEvents forwards the events for the users held by one edge.
func (s *Service) StreamEvents(ctx context.Context, req *connect.Request[chatv1.StreamEventsRequest], stream *connect.ServerStream[chatv1.StreamEventsResponse]) error {
	return fanout.Serve(ctx, s.deps.Bus, s.deps.Log, EventService, req.Msg.GetEdgeId(),
		func() *chatv1.StreamEventsResponse { return new(chatv1.StreamEventsResponse) }, stream.Send)
}
