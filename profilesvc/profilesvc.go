// Package profilesvc is the profile service: users, hashed session tokens, profiles with
// their curriculum, and the ISO 3166-1 country list. Its Connect handler is mounted by the
// one-process binary (cmd/charla) and by its own process (cmd/profilesvc) alike.
//
// Peers: GetProfile asks the chat service (ListContactIds) whether the viewer is a contact
// and the presence service (GetPresence) for isOnline/lastSeen. If the chat service fails
// or is not implemented, GetProfile of another user answers unavailable (email and phone
// cannot be decided); if the presence service fails, profiles are served as offline with
// lastSeen 0 and the failure is logged. RevokeSession publishes SessionEndedEvent through
// the fan-out; a failed publish is logged and the revocation stands (edges poll CheckSessions).
package profilesvc

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/profilesvc/internal/server"
	"github.com/charla/charla/profilesvc/internal/store"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/svc"
)

// EventService is the name this service's events carry on the bus.
const EventService = "profile"

// Service implements profilev1connect.ProfileServiceHandler: the RPCs of internal/server
// plus StreamEvents.
type Service struct {
	*server.Server
	deps  svc.Deps
	store *store.Store
}

var _ profilev1connect.ProfileServiceHandler = (*Service)(nil)

// New migrates the service's tables and builds the service from its dependencies.
func New(ctx context.Context, deps svc.Deps) (*Service, error) {
	if deps.DB == nil || deps.Bus == nil || deps.Peers == nil || deps.Log == nil {
		return nil, errors.New("profilesvc: DB, Bus, Peers and Log are required")
	}
	if err := store.Migrate(ctx, deps.DB); err != nil {
		return nil, fmt.Errorf("profilesvc: %w", err)
	}
	st := store.New(deps.DB)
	srv := server.New(server.Config{
		Store:    st,
		Contacts: deps.Peers.Chat,
		Presence: deps.Peers.Presence,
		// SessionEnded is for edges, not a client event: broadcast, never sequenced.
		Events: fanout.NewPublisher(deps.Bus, deps.Events, EventService,
			fanout.WithSequenced(func(proto.Message) bool { return false })),
		Log: deps.Log,
	})
	return &Service{Server: srv, deps: deps, store: st}, nil
}

// Configure declares the profile service's own settings on cfg (it has none) and returns
// its constructor (svc.Configure).
func Configure(*config.Loader) svc.Constructor {
	return func(ctx context.Context, deps svc.Deps) (svc.Service, error) { return New(ctx, deps) }
}

// RPC returns the Connect handler to mount.
func (s *Service) RPC() rpc.Service {
	path, h := profilev1connect.NewProfileServiceHandler(s, s.deps.HandlerOptionsWith()...)
	return rpc.Service{Name: profilev1connect.ProfileServiceName, Path: path, Handler: h}
}

// Close closes the store's prepared statements; the service has no background work.
func (s *Service) Close() error { return s.store.Close() }

// StreamEvents forwards the events for the users held by one edge.
func (s *Service) StreamEvents(ctx context.Context, req *connect.Request[profilev1.StreamEventsRequest], stream *connect.ServerStream[profilev1.StreamEventsResponse]) error {
	return fanout.Serve(ctx, s.deps.Bus, s.deps.Log, EventService, req.Msg.GetEdgeId(),
		func() *profilev1.StreamEventsResponse { return new(profilev1.StreamEventsResponse) }, stream.Send)
}
