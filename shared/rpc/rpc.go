package rpc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
)

// Service is one Connect service to mount: its fully qualified name (as in
// chatv1connect.ChatServiceName), its path prefix and its handler.
type Service struct {
	Name    string
	Path    string
	Handler http.Handler
}

// NewMux mounts services together with health checking and reflection for them.
// Health and reflection are not behind the token: they reveal nothing a client could not
// learn from the .proto files, and load balancers probe health without credentials.
// Health always answers SERVING; a process uses NewMuxChecked with a checker that knows
// its dependencies.
func NewMux(services ...Service) *http.ServeMux {
	return NewMuxChecked(grpchealth.NewStaticChecker(Names(services)...), services...)
}

// NewMuxChecked is NewMux with gRPC health answered by checker (see shared/health).
func NewMuxChecked(checker grpchealth.Checker, services ...Service) *http.ServeMux {
	mux := http.NewServeMux()
	names := Names(services)
	for _, s := range services {
		mux.Handle(s.Path, s.Handler)
	}
	mux.Handle(grpchealth.NewHandler(checker))
	reflector := grpcreflect.NewStaticReflector(names...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	return mux
}

// Names returns the fully qualified names of services.
func Names(services []Service) []string {
	names := make([]string, 0, len(services))
	for _, s := range services {
		names = append(names, s.Name)
	}
	return names
}

// errUnauthenticated is the one answer for a missing or wrong token.
var errUnauthenticated = errors.New("missing or invalid internal API token")

// AuthInterceptor requires "Authorization: Bearer <token>" on every call when token is
// not empty; with an empty token it lets everything through. Client side, it adds the
// header to every outgoing call.
func AuthInterceptor(token string) connect.Interceptor {
	header := "Bearer " + token
	return &authInterceptor{token: token, header: header, want: sha256.Sum256([]byte(header))}
}

type authInterceptor struct {
	token  string
	header string
	want   [sha256.Size]byte // digest of header
}

// check compares digests of the header in constant time: comparing the header itself
// would take a shortcut on a length mismatch and tell a prober the token's length.
func (a *authInterceptor) check(h http.Header) error {
	if a.token == "" {
		return nil
	}
	got := sha256.Sum256([]byte(h.Get("Authorization")))
	if subtle.ConstantTimeCompare(got[:], a.want[:]) != 1 {
		return connect.NewError(connect.CodeUnauthenticated, errUnauthenticated)
	}
	return nil
}

func (a *authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			if a.token != "" {
				req.Header().Set("Authorization", a.header)
			}
			return next(ctx, req)
		}
		if err := a.check(req.Header()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (a *authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if a.token != "" {
			conn.RequestHeader().Set("Authorization", a.header)
		}
		return conn
	}
}

func (a *authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := a.check(conn.RequestHeader()); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// CheckListenAddr refuses a non-loopback address when no token protects the listener.
func CheckListenAddr(name, addr, token string) error {
	if token != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: want host:port, got %q: %w", name, addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: %q is not a loopback address; set INTERNAL_API_TOKEN to listen on other addresses", name, addr)
	}
	return nil
}

// Protocols is HTTP/1.1 plus cleartext HTTP/2 (h2c), which gRPC needs without TLS.
func Protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// StreamGrace is how long Shutdown lets unary calls finish before the contexts of all
// requests, event streams included, are cancelled.
const StreamGrace = 2 * time.Second

// MaxRequestBytes bounds the body of every request on an internal listener (and the
// message every service reads, connect.WithReadMaxBytes): the largest legitimate request
// (a profile update with full curricula) is well under 1 MiB.
const MaxRequestBytes = 4 << 20

// NewServer returns an http.Server for an internal listener with sane timeouts and request
// bodies bounded by MaxRequestBytes.
// Streams are long-lived, so there is no write timeout, and http.Server.Shutdown would wait
// for them forever: once Shutdown starts, request contexts are cancelled after StreamGrace.
func NewServer(handler http.Handler) *http.Server {
	base, cancel := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:           http.MaxBytesHandler(handler, MaxRequestBytes),
		Protocols:         Protocols(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	srv.RegisterOnShutdown(func() { time.AfterFunc(StreamGrace, cancel) })
	return srv
}

// dialTimeout bounds the making of a connection to a service.
const dialTimeout = 3 * time.Second

// NewHTTPClient returns the client internal callers share: cleartext HTTP/2, so many
// calls and streams multiplex over few connections.
func NewHTTPClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Protocols: p,
		// A replica that vanished without a reset (its node died) fails the dial within
		// this time rather than the call's whole deadline, so a Balancer can eject it
		// and try another replica in time.
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// ClientOptions are the options every internal Connect client uses: the token, and the
// mark of idempotent procedures that lets a Balancer retry their calls on another replica.
func ClientOptions(token string, extra ...connect.ClientOption) []connect.ClientOption {
	return append([]connect.ClientOption{connect.WithInterceptors(AuthInterceptor(token), idempotencyInterceptor{})}, extra...)
}

// BaseURL turns a host:port or URL into the http:// base URL Connect clients want.
func BaseURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/")
	}
	return "http://" + addr
}
