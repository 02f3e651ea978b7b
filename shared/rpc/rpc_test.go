package rpc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	presencev1 "github.com/charla/charla/proto/gen/presence/v1"
	"github.com/charla/charla/proto/gen/presence/v1/presencev1connect"
	"github.com/charla/charla/shared/rpc"
)

// presence answers GetPresence with the ids asked, offline.
type presence struct {
	presencev1connect.UnimplementedPresenceServiceHandler
}

func (presence) GetPresence(_ context.Context, req *connect.Request[presencev1.GetPresenceRequest]) (*connect.Response[presencev1.GetPresenceResponse], error) {
	res := &presencev1.GetPresenceResponse{}
	for _, id := range req.Msg.GetUserIds() {
		res.Presences = append(res.Presences, &presencev1.Presence{UserId: id})
	}
	return connect.NewResponse(res), nil
}

func serve(t *testing.T, token string) string {
	t.Helper()
	path, h := presencev1connect.NewPresenceServiceHandler(presence{}, connect.WithInterceptors(rpc.AuthInterceptor(token)))
	srv := httptest.NewUnstartedServer(rpc.NewMux(rpc.Service{Name: presencev1connect.PresenceServiceName, Path: path, Handler: h}))
	srv.Config.Protocols = rpc.Protocols()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestAuthInterceptorOnEveryProtocol(t *testing.T) {
	t.Parallel()
	url := serve(t, "s3cret")
	protocols := map[string][]connect.ClientOption{
		"connect": nil, "grpc": {connect.WithGRPC()}, "grpcweb": {connect.WithGRPCWeb()},
	}
	for name, protoOpts := range protocols {
		for _, tc := range []struct {
			token string
			want  connect.Code // 0 for success
		}{{"s3cret", 0}, {"wrong", connect.CodeUnauthenticated}, {"", connect.CodeUnauthenticated}} {
			t.Run(name+"/"+tc.token, func(t *testing.T) {
				t.Parallel()
				c := presencev1connect.NewPresenceServiceClient(rpc.NewHTTPClient(), url, rpc.ClientOptions(tc.token, protoOpts...)...)
				res, err := c.GetPresence(context.Background(), connect.NewRequest(&presencev1.GetPresenceRequest{UserIds: []int64{7}}))
				if got := connect.CodeOf(err); err != nil && got != tc.want || err == nil && tc.want != 0 {
					t.Fatalf("err = %v, want code %v", err, tc.want)
				}
				if err == nil && res.Msg.GetPresences()[0].GetUserId() != 7 {
					t.Errorf("got %v, want user 7", res.Msg)
				}
			})
		}
	}
}

func TestHealthAndReflectionNeedNoToken(t *testing.T) {
	t.Parallel()
	url := serve(t, "s3cret")
	for _, path := range []string{"/grpc.health.v1.Health/Check"} {
		req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(`{"service":"presence.v1.PresenceService"}`))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d, want 200", path, res.StatusCode)
		}
	}
}

func TestCheckListenAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8090", "", true},
		{"[::1]:8090", "", true},
		{"localhost:8090", "", true},
		{"0.0.0.0:8090", "", false},
		{":8090", "", false},
		{"10.0.0.5:8090", "", false},
		{"0.0.0.0:8090", "tok", true},
		{"nonsense", "", false},
	} {
		err := rpc.CheckListenAddr("RPC_ADDR", tc.addr, tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("CheckListenAddr(%q, token=%q) = %v, want ok=%v", tc.addr, tc.token, err, tc.ok)
		}
	}
}

// TestAuthTokenOfAnyLength: tokens that differ only in length or in their last byte are
// refused alike (the comparison is of digests, in constant time).
func TestAuthTokenOfAnyLength(t *testing.T) {
	t.Parallel()
	url := serve(t, "s3cret")
	for _, tok := range []string{"s3cre", "s3cret!", "s3creT", strings.Repeat("x", 4096)} {
		c := presencev1connect.NewPresenceServiceClient(rpc.NewHTTPClient(), url, rpc.ClientOptions(tok)...)
		_, err := c.GetPresence(context.Background(), connect.NewRequest(&presencev1.GetPresenceRequest{}))
		if got := connect.CodeOf(err); got != connect.CodeUnauthenticated {
			t.Errorf("token %.10q: got %v, want unauthenticated", tok, err)
		}
	}
}
