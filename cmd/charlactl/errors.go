package main

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
)

// explain turns the error of a call to service (chat, profile, notify, presence) into a
// message that says what to change. what is the operation, as the user would say it.
func (a *app) explain(err error, service, what string) error {
	if err == nil {
		return nil
	}
	url := a.serviceURL(service)
	env := map[string]string{"chat": "CHAT_URL", "profile": "PROFILE_URL", "notify": "NOTIFY_URL", "presence": "PRESENCE_URL"}[service]
	switch code := connect.CodeOf(err); {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: interrupted", what)
	case code == connect.CodeUnauthenticated && a.token == "":
		return fmt.Errorf("%s: the %s service at %s wants an internal API token: set INTERNAL_API_TOKEN to the token the services were started with", what, service, url)
	case code == connect.CodeUnauthenticated:
		return fmt.Errorf("%s: the %s service at %s refused INTERNAL_API_TOKEN: set it to the token the services were started with", what, service, url)
	case code == connect.CodeDeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: the %s service at %s did not answer within %v (--timeout)", what, service, url, a.timeout)
	case code == connect.CodeUnimplemented:
		return fmt.Errorf("%s: %s does not serve this call: is it the %s service, and as recent as charlactl? (%v)", what, url, service, err)
	case code == connect.CodeUnavailable:
		return fmt.Errorf("%s: cannot reach the %s service at %s: is it running? Point --rpc (CHARLA_RPC_URL) or %s at its RPC listener (%v)", what, service, url, env, err)
	case code == connect.CodeInternal:
		return fmt.Errorf("%s: the %s service failed (its log says why): %s", what, service, message(err))
	}
	// Invalid arguments, conflicts, unknown users: the service's message names the field.
	return fmt.Errorf("%s: %s", what, message(err))
}

// message is the service's own message (without the code prefix Connect adds).
func message(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) && ce.Message() != "" {
		return ce.Message()
	}
	return err.Error()
}

func (a *app) serviceURL(service string) string {
	switch service {
	case "chat":
		return a.urls.Chat
	case "notify":
		return a.urls.Notify
	case "presence":
		return a.urls.Presence
	}
	return a.urls.Profile
}
