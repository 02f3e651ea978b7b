package edge

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// probeTimeout bounds each service probe of /ready.
const probeTimeout = 2 * time.Second

// ready answers 200 when every service answers and every event stream is open (its service
// has sent the subscribed marker: it is subscribed for this edge), else 503
// with the missing services and why:
// {"status":"unavailable","missing":["chat"],"reasons":{"chat":"event stream down"}};
// and 503 with {"edge":"draining"} once Shutdown has started.
func (e *Edge) ready(w http.ResponseWriter, r *http.Request) {
	reasons := map[string]string{}
	if e.draining.Load() {
		reasons["edge"] = "draining"
	}
	for _, name := range e.streams.Down() {
		reasons[name] = "event stream down"
	}
	select {
	case <-e.reporter.Registered():
	default:
		reasons[streamPresence] = "edge not registered"
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, probe := range e.probes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
			defer cancel()
			if !reachable(probe(ctx)) {
				mu.Lock()
				reasons[name] = "unreachable"
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(reasons) == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
		return
	}
	missing := make([]string, 0, len(reasons))
	for name := range reasons {
		missing = append(missing, name)
	}
	slices.Sort(missing)
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "missing": missing, "reasons": reasons})
}

// probes are cheap calls, one per service, that prove it answers.
func (e *Edge) probes() map[string]func(context.Context) error {
	c := e.clients
	return map[string]func(context.Context) error{
		streamChat: func(ctx context.Context) error {
			_, err := c.Chat.ListContactIds(ctx, connect.NewRequest(&chatv1.ListContactIdsRequest{}))
			return err
		},
		streamProfile: func(ctx context.Context) error {
			_, err := c.Profile.CheckSessions(ctx, connect.NewRequest(&profilev1.CheckSessionsRequest{}))
			return err
		},
		streamNotify: func(ctx context.Context) error {
			_, err := c.Notify.ListNotifications(ctx, connect.NewRequest(&notifyv1.ListNotificationsRequest{Limit: 1}))
			return err
		},
		streamPresence: func(ctx context.Context) error {
			_, err := c.Presence.GetPresence(ctx, connect.NewRequest(&presencev1.GetPresenceRequest{}))
			return err
		},
	}
}

// reachable tells whether a probe's answer came from a working service: an application
// error (such as invalid_argument for the empty probe) proves it answers; transport
// failures, timeouts and a refused internal token do not.
func reachable(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeUnauthenticated,
		connect.CodeUnimplemented, connect.CodeUnknown, connect.CodeCanceled:
		return err == nil
	}
	return true
}
