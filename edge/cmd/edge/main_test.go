package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/shared/telemetry/telemetrytest"
)

// otlpReceiver is an OTLP/HTTP trace endpoint that keeps what it is sent.
type otlpReceiver struct {
	mu       sync.Mutex
	requests []*collectortrace.ExportTraceServiceRequest
	errs     []string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	req := new(collectortrace.ExportTraceServiceRequest)
	o.mu.Lock()
	switch {
	case r.URL.Path != "/v1/traces":
		o.errs = append(o.errs, "export to "+r.URL.Path+", want /v1/traces")
	case err != nil:
		o.errs = append(o.errs, err.Error())
	default:
		if err := proto.Unmarshal(body, req); err != nil {
			o.errs = append(o.errs, "decode export: "+err.Error())
		} else {
			o.requests = append(o.requests, req)
		}
	}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// spans returns the names of the spans exported by service.
func (o *otlpReceiver) spans(service string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var names []string
	for _, req := range o.requests {
		for _, rs := range req.GetResourceSpans() {
			name := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					name = a.GetValue().GetStringValue()
				}
			}
			if name != service {
				continue
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
				}
			}
		}
	}
	return names
}

// TestEdgeAloneServesMetricsAndExportsTraces runs the edge process by itself, with no
// service reachable: it must still serve /metrics and export its spans (here the client
// spans of /ready's probes) to the OTLP endpoint of the standard variables.
func TestEdgeAloneServesMetricsAndExportsTraces(t *testing.T) {
	t.Chdir(t.TempDir()) // no stray .env
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	for _, v := range []string{"CHAT_URL", "PROFILE_URL", "NOTIFY_URL", "PRESENCE_URL"} {
		t.Setenv(v, "127.0.0.1:1") // nothing listens there
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	exit := make(chan int, 1)
	var logs bytes.Buffer
	go func() {
		exit <- run(ctx, func() {}, []string{"-edge-addr", "127.0.0.1:0", "-drain-timeout", "2s"}, &syncWriter{w: &logs}, func(addr string) { addrc <- addr })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case code := <-exit:
		t.Fatalf("edge exited with %d before listening:\n%s", code, logs.String())
	}

	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %q, want 200 text/plain:\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	m, err := telemetrytest.Parse(string(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, series := range []string{"charla_build_info", "charla_edge_connections_active", "charla_edge_send_dropped_total", "go_goroutines"} {
		if !m.Has(series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if got := m.Count("charla_edge_handshakes_refused_total"); got < 5 {
		t.Errorf("charla_edge_handshakes_refused_total: %d reasons at start, want every reason at 0\n%s", got, m.Grep("charla_edge_handshakes_refused_total"))
	}
	if got := m.Sum("charla_build_info"); got != 1 {
		t.Errorf("charla_build_info = %v, want 1", got)
	}

	// /ready probes the four services: not ready, and four client spans to export.
	res, err = http.Get("http://" + addr + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /ready with no service: %d, want 503", res.StatusCode)
	}

	cancel() // SIGTERM
	if code := <-exit; code != 0 {
		t.Fatalf("edge exited with %d, want 0:\n%s", code, logs.String())
	}
	// Shutdown flushed the batch: the probes' spans have reached the collector.
	names := recv.spans("edge")
	want := map[string]bool{
		"chat.v1.ChatService/ListContactIds":              false,
		"profile.v1.ProfileService/CheckSessions":         false,
		"presence.v1.PresenceService/GetPresence":         false,
		"notify.v1.NotificationService/ListNotifications": false,
	}
	for _, n := range names {
		if _, ok := want[n]; ok {
			want[n] = true
		}
	}
	for n, seen := range want {
		if !seen {
			t.Errorf("no span %q exported by service edge; got %q (receiver errors %q)", n, names, recv.errs)
		}
	}
}

// syncWriter lets the process log from many goroutines into one buffer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestBadReplicaListNamesTheVariable: a service address with a bad entry stops the edge
// before it starts, naming the variable and the entry.
func TestBadReplicaListNamesTheVariable(t *testing.T) {
	t.Chdir(t.TempDir()) // no stray .env
	t.Setenv("PRESENCE_URL", "http://10.0.0.1:8094,10.0.0.2")
	var stderr bytes.Buffer
	if code := run(context.Background(), func() {}, []string{"-edge-addr", "127.0.0.1:0"}, &stderr, nil); code != 2 {
		t.Fatalf("exit code = %d, want 2; stderr:\n%s", code, stderr.String())
	}
	if got, want := stderr.String(), `PRESENCE_URL="http://10.0.0.1:8094,10.0.0.2": entry 2 of 2 ("10.0.0.2"): want host:port`; !strings.Contains(got, want) {
		t.Errorf("stderr = %q, want it to contain %q", got, want)
	}
}
