// Package peers builds the Connect clients of the four internal services from their base
// URLs, with the internal bearer token and the shared HTTP client, and adapts the presence
// client to the route lookup the event fan-out needs.
package peers

import (
	"context"
	"fmt"
	"net/http"

	"connectrpc.com/connect"

	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
	"github.com/charla/charla/shared/fanout"
	"github.com/charla/charla/shared/rpc"
)

// URLs are the base URLs (or host:port) of the services.
type URLs struct {
	Chat, Profile, Notify, Presence string
}

// Same returns URLs with every service at addr, as in the one-process mode.
func Same(addr string) URLs {
	return URLs{Chat: addr, Profile: addr, Notify: addr, Presence: addr}
}

// Clients holds one client per service.
type Clients struct {
	Chat     chatv1connect.ChatServiceClient
	Profile  profilev1connect.ProfileServiceClient
	Notify   notifyv1connect.NotificationServiceClient
	Presence presencev1connect.PresenceServiceClient
}

// New returns clients for urls that send token on every call. httpClient may be nil.
func New(urls URLs, token string, httpClient *http.Client, opts ...connect.ClientOption) *Clients {
	if httpClient == nil {
		httpClient = rpc.NewHTTPClient()
	}
	o := rpc.ClientOptions(token, opts...)
	return &Clients{
		Chat:     chatv1connect.NewChatServiceClient(httpClient, rpc.BaseURL(urls.Chat), o...),
		Profile:  profilev1connect.NewProfileServiceClient(httpClient, rpc.BaseURL(urls.Profile), o...),
		Notify:   notifyv1connect.NewNotificationServiceClient(httpClient, rpc.BaseURL(urls.Notify), o...),
		Presence: presencev1connect.NewPresenceServiceClient(httpClient, rpc.BaseURL(urls.Presence), o...),
	}
}

// PresenceRoutes looks up routes through the presence service: one GetRoutes call per lookup.
func PresenceRoutes(c presencev1connect.PresenceServiceClient) fanout.RouteLookup {
	return fanout.RouteLookupFunc(func(ctx context.Context, userIDs []int64) (map[int64][]string, error) {
		res, err := c.GetRoutes(ctx, connect.NewRequest(&presencev1.GetRoutesRequest{UserIds: userIDs}))
		if err != nil {
			return nil, fmt.Errorf("presence GetRoutes: %w", err)
		}
		routes := make(map[int64][]string, len(res.Msg.GetRoutes()))
		for _, r := range res.Msg.GetRoutes() {
			routes[r.GetUserId()] = r.GetEdgeIds()
		}
		return routes, nil
	})
}
