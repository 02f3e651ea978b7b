package svc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

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
	if strings.Contains(m.String(), token) {
		t.Errorf("the token appears in /metrics")
	}
}

// TestRequestBodiesBounded: a request message over rpc.MaxRequestBytes is refused with
// resource_exhausted before the handler runs, on the listener NewServer builds; a request
// under it passes.
func TestRequestBodiesBounded(t *testing.T) {
	const proc = "/charla.test.v1.Echo/Echo"
	called := 0
	h := connect.NewUnaryHandler(proc, func(_ context.Context, req *connect.Request[wrapperspb.BytesValue]) (*connect.Response[wrapperspb.BytesValue], error) {
		called++
		return connect.NewResponse(&wrapperspb.BytesValue{}), nil
	}, svc.HandlerOptions(nil, "")...)
	hs := httptest.NewUnstartedServer(nil)
	hs.Config = rpc.NewServer(svc.Mux(nil, nil, rpc.Service{Name: "charla.test.v1.Echo", Path: "/charla.test.v1.Echo/", Handler: h}))
	hs.Start()
	t.Cleanup(hs.Close)
	client := connect.NewClient[wrapperspb.BytesValue, wrapperspb.BytesValue](hs.Client(), hs.URL+proc)
	ctx := context.Background()
	if _, err := client.CallUnary(ctx, connect.NewRequest(&wrapperspb.BytesValue{Value: make([]byte, 1<<20)})); err != nil {
		t.Fatalf("1 MiB request: %v", err)
	}
	_, err := client.CallUnary(ctx, connect.NewRequest(&wrapperspb.BytesValue{Value: make([]byte, rpc.MaxRequestBytes+1)}))
	if got := connect.CodeOf(err); got != connect.CodeResourceExhausted {
		t.Fatalf("request over the bound: got %v (%v), want resource_exhausted", got, err)
	}
	if called != 1 {
		t.Errorf("handler calls: got %d, want 1", called)
	}
}
