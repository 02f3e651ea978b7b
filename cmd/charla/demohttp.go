package main

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/peers"
)

// demoSessionTTL is how long a session handed out by the demo sign-in lasts.
const demoSessionTTL = 24 * time.Hour

// demoRoutesAllowed reports whether the demo sign-in may be mounted: only in demo mode and
// only when the edge listens on a loopback address, so that nobody else can sign in as a
// demo user without a token.
func demoRoutesAllowed(demo bool, edgeAddr string) bool {
	if !demo {
		return false
	}
	host, _, err := net.SplitHostPort(edgeAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// mountDemoRoutes adds the demo sign-in to the edge's listener through handle:
//
//	GET  /demo/users    {"users": [{"userName", "firstName", "lastName"}]}
//	POST /demo/session  {"userName": "alice"} → {"token", "expiresAt", "userId", "userName"}
//
// The web app offers a "continue as" button per demo user when GET /demo/users answers.
// Each request must come from loopback, and a POST must be JSON from the page's own origin
// (a cross-site form cannot send JSON without a preflight, which nothing here answers).
func mountDemoRoutes(handle func(pattern string, h http.Handler), clients *peers.Clients) {
	handle("GET /demo/users", loopbackOnly(http.HandlerFunc(demoUsersHandler)))
	handle("POST /demo/session", loopbackOnly(demoSessionHandler(clients)))
}

// demoUserInfo is what the sign-in page shows of a demo user.
type demoUserInfo struct {
	UserName  string `json:"userName"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
}

func demoUsersHandler(w http.ResponseWriter, _ *http.Request) {
	users := make([]demoUserInfo, 0, len(demoUsers))
	for _, u := range demoUsers {
		users = append(users, demoUserInfo{UserName: u.create.GetUserName(), FirstName: u.create.GetFirstName(), LastName: u.create.GetLastName()})
	}
	writeDemoJSON(w, http.StatusOK, map[string]any{"users": users})
}

// demoSessionResponse answers POST /demo/session.
type demoSessionResponse struct {
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expiresAt"`
	UserID    int64  `json:"userId"`
	UserName  string `json:"userName"`
}

func demoSessionHandler(clients *peers.Clients) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			writeDemoError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			return
		}
		if !sameOrigin(r) {
			writeDemoError(w, http.StatusForbidden, "origin not allowed")
			return
		}
		var req struct {
			UserName string `json:"userName"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeDemoError(w, http.StatusBadRequest, "body must be {\"userName\": NAME}")
			return
		}
		if !isDemoUser(req.UserName) {
			writeDemoError(w, http.StatusNotFound, fmt.Sprintf("userName %q is not a demo user", req.UserName))
			return
		}
		ctx := r.Context()
		found, err := clients.Profile.GetUsers(ctx, connect.NewRequest(&profilev1.GetUsersRequest{UserNames: []string{req.UserName}}))
		if err != nil {
			writeDemoError(w, http.StatusServiceUnavailable, "profile service unavailable")
			return
		}
		if len(found.Msg.GetUsers()) != 1 {
			writeDemoError(w, http.StatusNotFound, fmt.Sprintf("demo user %q does not exist", req.UserName))
			return
		}
		user := found.Msg.GetUsers()[0]
		sess, err := clients.Profile.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{
			UserId: user.GetId(), TtlSeconds: int64(demoSessionTTL / time.Second),
		}))
		if err != nil {
			writeDemoError(w, http.StatusServiceUnavailable, "profile service unavailable")
			return
		}
		writeDemoJSON(w, http.StatusOK, demoSessionResponse{
			Token: sess.Msg.GetToken(), ExpiresAt: sess.Msg.GetExpiresAt(), UserID: user.GetId(), UserName: user.GetUserName(),
		})
	})
}

func isDemoUser(name string) bool {
	for _, u := range demoUsers {
		if u.create.GetUserName() == name {
			return true
		}
	}
	return false
}

// loopbackOnly refuses requests whose peer is not a loopback address.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !ip.IsLoopback() {
			writeDemoError(w, http.StatusForbidden, "the demo sign-in answers loopback clients only")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether the request has no Origin (not a browser) or the page's own.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func writeDemoError(w http.ResponseWriter, status int, message string) {
	writeDemoJSON(w, status, map[string]any{"code": status, "message": message})
}

func writeDemoJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":500,"message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
