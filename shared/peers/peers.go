// Package peers builds the Connect clients of the four internal services from their
// addresses, with the internal bearer token and the shared HTTP transport. Each address
// may name several replicas (a comma-separated list, or a name with several DNS records):
// each service's calls then go through an rpc.Balancer, which spreads them over the
// replicas (see package rpc).
package peers

import (
	"fmt"
	"net/http"

	"connectrpc.com/connect"

	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	"github.com/charla/charla/proto/gen/notify/v1/notifyv1connect"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	"github.com/charla/charla/proto/gen/profile/v1/profilev1connect"
	"github.com/charla/charla/shared/rpc"
)

// URLs are the addresses of the services: host:port, a base URL, or a comma-separated
// list of them (see rpc.CheckTarget).
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

	balancers []*rpc.Balancer
	// transport is the HTTP client New made itself (nil when the caller gave one).
	transport *http.Client
}

// New returns clients for urls that send token on every call. httpClient may be nil (the
// internal cleartext HTTP/2 client); its Transport carries the calls of every service, so
// services at one address share its connections. An address that is not valid (check
// URLs first, as the processes do at configuration) makes every call to its service fail
// with the reason. Close the clients to stop the DNS lookups of their balancers.
func New(urls URLs, token string, httpClient *http.Client, opts ...connect.ClientOption) *Clients {
	c := &Clients{}
	if httpClient == nil {
		httpClient = rpc.NewHTTPClient()
		c.transport = httpClient
	}
	o := rpc.ClientOptions(token, opts...)
	chat, chatURL := c.balance("chat", urls.Chat, httpClient)
	profile, profileURL := c.balance("profile", urls.Profile, httpClient)
	notify, notifyURL := c.balance("notify", urls.Notify, httpClient)
	presence, presenceURL := c.balance("presence", urls.Presence, httpClient)
	c.Chat = chatv1connect.NewChatServiceClient(chat, chatURL, o...)
	c.Profile = profilev1connect.NewProfileServiceClient(profile, profileURL, o...)
	c.Notify = notifyv1connect.NewNotificationServiceClient(notify, notifyURL, o...)
	c.Presence = presencev1connect.NewPresenceServiceClient(presence, presenceURL, o...)
	return c
}

// balance returns the HTTP client and base URL of one service at addr: hc with its
// transport under a Balancer.
func (c *Clients) balance(service, addr string, hc *http.Client) (*http.Client, string) {
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	out := *hc
	b, err := rpc.NewBalancer(addr, next, rpc.BalancerOptions{})
	if err != nil {
		out.Transport = failing{fmt.Errorf("%s service address %q: %w", service, addr, err)}
		return &out, "http://invalid.invalid"
	}
	c.balancers = append(c.balancers, b)
	out.Transport = b
	return &out, b.BaseURL()
}

// Close stops the balancers' lookups and closes the idle connections of the HTTP client
// New made. Calls made afterwards still work. Close may be called on Clients not made by
// New (fakes in tests), and more than once.
func (c *Clients) Close() error {
	for _, b := range c.balancers {
		b.Close()
	}
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	return nil
}

// failing is the transport of a service whose address is not valid.
type failing struct{ err error }

func (f failing) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return nil, f.err
}
