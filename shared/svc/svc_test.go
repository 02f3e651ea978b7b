package svc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/svc"
	"github.com/charla/charla/shared/telemetry/telemetrytest"
)

// TestMuxMetricsWithoutToken: the RPCs want the token, /metrics does not, and the refused
// call is counted because tracing sits outside the token check.
func TestMuxMetricsWithoutToken(t *testing.T) {
	tel, _ := telemetrytest.New(t)
	const proc, token = "/charla.test.v1.Ping/Ping", "tok-7f3a9c"
	h := connect.NewUnaryHandler(proc, func(context.Context, *connect.Request[emptypb.Empty]) (*connect.Response[emptypb.Empty], error) {
		return connect.NewResponse(&emptypb.Empty{}), nil
	}, svc.HandlerOptions(tel, token)...)
	srv := httptest.NewServer(svc.Mux(tel, nil, rpc.Service{Name: "charla.test.v1.Ping", Path: "/charla.test.v1.Ping/", Handler: h}))
	t.Cleanup(srv.Close)

	client := connect.NewClient[emptypb.Empty, emptypb.Empty](srv.Client(), srv.URL+proc)
	if _, err := client.CallUnary(context.Background(), connect.NewRequest(&emptypb.Empty{})); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("call without token: got %v, want unauthenticated", err)
	}
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if got, want := res.StatusCode, http.StatusOK; got != want {
		t.Fatalf("GET /metrics: got %d, want %d", got, want)
	}
	m := telemetrytest.Scrape(t, tel.MetricsHandler())
	if got := m.Sum("rpc_server_call_duration_seconds_count", `rpc_response_status_code="UNAUTHENTICATED"`); got != 1 {
		t.Errorf("refused calls counted: got %v, want 1\n%s", got, m.Grep("rpc_server_call_duration_seconds_count"))
	}
	if strings.Contains(strings.Join(m, "\n"), token) {
		t.Errorf("the token appears in /metrics")
	}
}
