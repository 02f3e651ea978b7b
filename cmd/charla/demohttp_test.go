package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/charla/charla/cmd/internal/system/systemtest"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

func TestDemoRoutesAllowed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		demo bool
		addr string
		want bool
	}{
		{true, "127.0.0.1:8080", true},
		{true, "[::1]:8080", true},
		{true, "127.0.0.2:8080", true},
		{false, "127.0.0.1:8080", false},
		{true, "0.0.0.0:8080", false},
		{true, "192.0.2.10:8080", false},
		{true, "localhost:8080", false}, // a name could resolve anywhere: only literal loopback IPs
		{true, "nonsense", false},
	}
	for _, c := range cases {
		if got := demoRoutesAllowed(c.demo, c.addr); got != c.want {
			t.Errorf("demoRoutesAllowed(%v, %q): got %v, want %v", c.demo, c.addr, got, c.want)
		}
	}
}

// demoMux starts a whole system with the demo data and returns a mux with the demo routes.
func demoMux(t *testing.T) (*http.ServeMux, *systemtest.System) {
	t.Helper()
	s := systemtest.Start(t, systemtest.Options{})
	if _, err := seedDemo(context.Background(), s.Clients); err != nil {
		t.Fatalf("seed demo: %v", err)
	}
	mux := http.NewServeMux()
	mountDemoRoutes(mux.Handle, s.Clients)
	return mux, s
}

type demoReq struct {
	method, path, body, contentType, origin, remote string
}

func (r demoReq) do(h http.Handler) (int, map[string]any) {
	req := httptest.NewRequest(r.method, "http://127.0.0.1:8080"+r.path, strings.NewReader(r.body))
	req.RemoteAddr = "127.0.0.1:50000"
	if r.remote != "" {
		req.RemoteAddr = r.remote
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.origin != "" {
		req.Header.Set("Origin", r.origin)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

func TestDemoSessionSignsInADemoUser(t *testing.T) {
	t.Parallel()
	mux, s := demoMux(t)

	code, body := demoReq{method: "GET", path: "/demo/users"}.do(mux)
	if code != http.StatusOK {
		t.Fatalf("GET /demo/users: got %d, want 200", code)
	}
	users, _ := body["users"].([]any)
	if len(users) != len(demoUsers) {
		t.Fatalf("GET /demo/users: got %d users, want %d: %v", len(users), len(demoUsers), body)
	}

	code, body = demoReq{method: "POST", path: "/demo/session", body: `{"userName":"bob"}`, contentType: "application/json", origin: "http://127.0.0.1:8080"}.do(mux)
	if code != http.StatusOK {
		t.Fatalf("POST /demo/session: got %d %v, want 200", code, body)
	}
	token, _ := body["token"].(string)
	res, err := s.Clients.Profile.ResolveSession(context.Background(), connect.NewRequest(&profilev1.ResolveSessionRequest{Token: token}))
	if err != nil {
		t.Fatalf("the token does not resolve: %v", err)
	}
	if got := res.Msg.GetUser().GetUserName(); got != "bob" {
		t.Errorf("the token's user: got %q, want bob", got)
	}
	if got, want := body["userId"], float64(res.Msg.GetUser().GetId()); got != want {
		t.Errorf("userId: got %v, want %v", got, want)
	}
	if got, want := body["expiresAt"], float64(res.Msg.GetExpiresAt()); got != want {
		t.Errorf("expiresAt: got %v, want %v", got, want)
	}
}

func TestDemoSessionRefusals(t *testing.T) {
	t.Parallel()
	mux, _ := demoMux(t)
	cases := []struct {
		name string
		req  demoReq
		want int
	}{
		{"not a demo user", demoReq{method: "POST", path: "/demo/session", body: `{"userName":"mallory"}`, contentType: "application/json"}, http.StatusNotFound},
		{"not JSON", demoReq{method: "POST", path: "/demo/session", body: `userName=alice`, contentType: "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		{"text/plain (a cross-site form)", demoReq{method: "POST", path: "/demo/session", body: `{"userName":"alice"}`, contentType: "text/plain"}, http.StatusUnsupportedMediaType},
		{"another origin", demoReq{method: "POST", path: "/demo/session", body: `{"userName":"alice"}`, contentType: "application/json", origin: "http://evil.example"}, http.StatusForbidden},
		{"not loopback", demoReq{method: "POST", path: "/demo/session", body: `{"userName":"alice"}`, contentType: "application/json", remote: "192.0.2.7:4000"}, http.StatusForbidden},
		{"list not loopback", demoReq{method: "GET", path: "/demo/users", remote: "192.0.2.7:4000"}, http.StatusForbidden},
		{"unknown key", demoReq{method: "POST", path: "/demo/session", body: `{"userName":"alice","admin":true}`, contentType: "application/json"}, http.StatusBadRequest},
		{"bad JSON", demoReq{method: "POST", path: "/demo/session", body: `{"userName":`, contentType: "application/json"}, http.StatusBadRequest},
	}
	for _, c := range cases {
		code, body := c.req.do(mux)
		if code != c.want {
			t.Errorf("%s: got %d %v, want %d", c.name, code, body, c.want)
			continue
		}
		if msg, _ := body["message"].(string); msg == "" || body["code"] != float64(c.want) {
			t.Errorf("%s: body %v, want {code, message}", c.name, body)
		}
	}
}
