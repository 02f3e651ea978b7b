// Package peers builds the Connect clients of the four internal services from their base
// URLs, with the internal bearer token and the shared HTTP client.
package peers

import (
	"net/http"

	"connectrpc.com/connect"

	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
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
