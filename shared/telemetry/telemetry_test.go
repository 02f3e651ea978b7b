package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
	"github.com/charla/charla/shared/svc"
	"github.com/charla/charla/shared/telemetry"
	"github.com/charla/charla/shared/telemetry/telemetrytest"
)

const (
	token     = "test-internal-token"
	procedure = "/charla.test.v1.NoteService/Save"
	// secret is a value passed as a query argument: it must appear in no span.
	secret = "s3cr3t-argument-value"
)

// noteServer is a one-method Connect service over a real database: it saves the request's
// text and counts the rows holding it, so one call runs two statements.
func noteServer(t *testing.T, tel *telemetry.Telemetry, db *sqldb.DB) *httptest.Server {
	t.Helper()
	ddl := "CREATE TABLE Note (id INTEGER PRIMARY KEY AUTOINCREMENT, body VARCHAR(200) NOT NULL)"
	if db.Dialect == sqldb.MySQL {
		ddl = "CREATE TABLE Note (id BIGINT PRIMARY KEY AUTO_INCREMENT, body VARCHAR(200) NOT NULL)"
	}
	if _, err := db.ExecContext(context.Background(), ddl); err != nil {
		t.Fatalf("create table: %v", err)
	}
	handler := connect.NewUnaryHandler(procedure,
		func(ctx context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.Int64Value], error) {
			if req.Msg.GetValue() == "" {
				return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("value: empty"))
			}
			if _, err := db.ExecContext(ctx, "INSERT INTO Note (body) VALUES (?)", req.Msg.GetValue()); err != nil {
				return nil, connect.NewError(connect.CodeInternal, err)
			}
			var n int64
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM Note WHERE body = ?", req.Msg.GetValue()).Scan(&n); err != nil {
				return nil, connect.NewError(connect.CodeInternal, err)
			}
			return connect.NewResponse(wrapperspb.Int64(n)), nil
		},
		svc.HandlerOptions(tel, token)...)
	mux := rpc.NewMux(rpc.Service{Name: "charla.test.v1.NoteService", Path: "/charla.test.v1.NoteService/", Handler: handler})
	mux.Handle("GET /metrics", tel.MetricsHandler())
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func noteClient(srv *httptest.Server, tel *telemetry.Telemetry, tok string) *connect.Client[wrapperspb.StringValue, wrapperspb.Int64Value] {
	return connect.NewClient[wrapperspb.StringValue, wrapperspb.Int64Value](
		srv.Client(), srv.URL+procedure, rpc.ClientOptions(tok, tel.ConnectClientOptions()...)...)
}

// TestOneTrace shows a frame span, the Connect client span, the service's server span and
// its database spans all in one trace, each the child of the one before, with no argument
// value in any attribute.
func TestOneTrace(t *testing.T) {
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		exp := tracetest.NewInMemoryExporter()
		tel := telemetrytest.Setup(t, exp)
		db, err := sqldb.Open(context.Background(), url) // after Setup, as a service does
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		srv := noteServer(t, tel, db)
		client := noteClient(srv, tel, token)

		// The root plays the edge's frame span (edge/edgemetrics).
		ctx, root := tel.TracerProvider().Tracer("test").Start(context.Background(), "SEND_CHAT_MESSAGE")
		res, err := client.CallUnary(ctx, connect.NewRequest(wrapperspb.String(secret)))
		if err != nil {
			t.Fatalf("call: %v", err)
		}
		root.End()
		if got, want := res.Msg.GetValue(), int64(1); got != want {
			t.Fatalf("count: got %d, want %d", got, want)
		}

		spans := exp.GetSpans()
		byName := map[string]tracetest.SpanStub{}
		count := map[string]int{}
		for _, s := range spans {
			byName[s.Name] = s
			count[s.Name]++
			for _, a := range s.Attributes {
				if strings.Contains(a.Value.String(), secret) {
					t.Errorf("span %q attribute %s carries the argument value: %q", s.Name, a.Key, a.Value.String())
				}
			}
			for _, ev := range s.Events {
				for _, a := range ev.Attributes {
					if strings.Contains(a.Value.String(), secret) {
						t.Errorf("span %q event %q carries the argument value", s.Name, ev.Name)
					}
				}
			}
		}
		frame, ok := byName["SEND_CHAT_MESSAGE"]
		if !ok {
			t.Fatalf("no frame span among %v", names(spans))
		}
		rpcName := strings.TrimPrefix(procedure, "/")
		var client_, server tracetest.SpanStub
		for _, s := range spans {
			if s.Name == rpcName && s.SpanKind == trace.SpanKindClient {
				client_ = s
			}
			if s.Name == rpcName && s.SpanKind == trace.SpanKindServer {
				server = s
			}
		}
		insert, okInsert := byName["INSERT Note"]
		query, okQuery := byName["SELECT Note"]
		if !client_.SpanContext.IsValid() || !server.SpanContext.IsValid() || !okInsert || !okQuery {
			t.Fatalf("missing spans: got %v", names(spans))
		}
		// One span per statement: on MySQL the driver's refusal (driver.ErrSkip) of a
		// statement with arguments, before it is prepared, is not a span of its own.
		for _, n := range []string{insert.Name, query.Name} {
			if got, want := count[n], 1; got != want {
				t.Errorf("spans named %q: got %d, want %d (%v)", n, got, want, names(spans))
			}
		}
		chain := []struct {
			name          string
			span, wantPar tracetest.SpanStub
		}{
			{"client", client_, frame},
			{"server", server, client_},
			{"insert", insert, server},
			{"select", query, server},
		}
		for _, c := range chain {
			if got, want := c.span.SpanContext.TraceID(), frame.SpanContext.TraceID(); got != want {
				t.Errorf("%s span trace: got %s, want %s", c.name, got, want)
			}
			if got, want := c.span.Parent.SpanID(), c.wantPar.SpanContext.SpanID(); got != want {
				t.Errorf("%s span parent: got %s, want %s (%s)", c.name, got, want, c.wantPar.Name)
			}
		}
		if frame.Parent.IsValid() {
			t.Errorf("frame span has a parent %s; want a root", frame.Parent.SpanID())
		}
		var text string
		for _, a := range insert.Attributes {
			if a.Key == "db.query.text" {
				text = a.Value.AsString()
			}
		}
		if want := "INSERT INTO Note (body) VALUES (?)"; text != want {
			t.Errorf("db.query.text: got %q, want %q", text, want)
		}
	})
}

func names(spans tracetest.SpanStubs) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name+"/"+s.SpanKind.String())
	}
	return n
}

// TestMetricsMove scrapes /metrics before and after traffic: RPC and database latency
// histograms and errors by code move.
func TestMetricsMove(t *testing.T) {
	tel := telemetrytest.Setup(t, tracetest.NewNoopExporter())
	db := dbtest.Open(t, sqldb.SQLite)
	srv := noteServer(t, tel, db)
	client := noteClient(srv, tel, token)
	before := scrape(t, srv.URL+"/metrics")

	ctx := context.Background()
	for range 3 {
		if _, err := client.CallUnary(ctx, connect.NewRequest(wrapperspb.String("hola"))); err != nil {
			t.Fatalf("call: %v", err)
		}
	}
	if _, err := client.CallUnary(ctx, connect.NewRequest(wrapperspb.String(""))); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("empty call: got %v, want invalid_argument", err)
	}
	if _, err := noteClient(srv, tel, "wrong").CallUnary(ctx, connect.NewRequest(wrapperspb.String("x"))); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("bad token: got %v, want unauthenticated", err)
	}

	after := scrape(t, srv.URL+"/metrics")
	const method = `rpc_method="charla.test.v1.NoteService/Save"`
	tests := []struct {
		name   string
		labels []string
		delta  float64
	}{
		{"rpc_server_call_duration_seconds_count", []string{method}, 5},
		{"rpc_client_call_duration_seconds_count", []string{method}, 5},
		// Errors by code, refused calls included (tracing sits outside the token check).
		{"rpc_server_call_duration_seconds_count", []string{method, `rpc_response_status_code="UNAUTHENTICATED"`}, 1},
		{"rpc_server_call_duration_seconds_count", []string{method, `rpc_response_status_code="INVALID_ARGUMENT"`}, 1},
		{"db_client_operation_duration_seconds_count", []string{`db_system_name="sqlite"`}, 6},
		{"go_goroutines", nil, 0}, // the Go runtime collector is registered
	}
	for _, tt := range tests {
		if !after.Has(tt.name, tt.labels...) {
			t.Errorf("%s%v: absent from /metrics\n%s", tt.name, tt.labels, after.Grep(tt.name))
			continue
		}
		if got := after.Sum(tt.name, tt.labels...) - before.Sum(tt.name, tt.labels...); got < tt.delta {
			t.Errorf("%s%v: moved by %v, want at least %v\n%s", tt.name, tt.labels, got, tt.delta, after.Grep(tt.name))
		}
	}
}

// scrape fetches /metrics over HTTP (the way Prometheus does, content type included) and
// parses it with telemetrytest.
func scrape(t *testing.T, url string) telemetrytest.Metrics {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	if got, want := res.StatusCode, http.StatusOK; got != want {
		t.Fatalf("scrape status: got %d, want %d: %s", got, want, body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("scrape content type: got %q, want text/plain", ct)
	}
	m, err := telemetrytest.Parse(string(body))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var _ sdktrace.SpanExporter = tracetest.NewInMemoryExporter()
