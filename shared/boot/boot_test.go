package boot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/charla/charla/shared/boot"
	"github.com/charla/charla/shared/peers"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// noTracing keeps the standard OTEL_* variables of the machine out of the test.
func noTracing(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
}

// TestStartRefusesBadSettings: a bad value of the process's own settings or of the ones
// every process has stops it with exit code 2 and a message naming the variable.
func TestStartRefusesBadSettings(t *testing.T) {
	noTracing(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-my-count", "0"}, "MY_COUNT"},
		{[]string{"-log-level", "loud"}, "LOG_LEVEL"},
		{[]string{"-log-format", "xml"}, "LOG_FORMAT"},
		{[]string{"stray"}, "unexpected argument"},
	} {
		var stderr bytes.Buffer
		p := boot.New("proc", &stderr)
		p.Config.Int("MY_COUNT", 1, 1, 10, "a count")
		code, ok := p.Start(context.Background(), tt.args)
		p.Close()
		if ok || code != boot.ExitConfig {
			t.Errorf("Start(%q) = %d, %v; want %d, false", tt.args, code, ok, boot.ExitConfig)
		}
		if got := stderr.String(); !strings.Contains(got, "proc: configuration:") || !strings.Contains(got, tt.want) {
			t.Errorf("Start(%q) said %q, want a configuration error naming %s", tt.args, got, tt.want)
		}
	}
}

// TestStartHelp: -help answers and asks for exit code 0.
func TestStartHelp(t *testing.T) {
	noTracing(t)
	p := boot.New("proc", &bytes.Buffer{})
	if code, ok := p.Start(context.Background(), []string{"-help"}); ok || code != boot.ExitOK {
		t.Errorf("Start(-help) = %d, %v; want %d, false", code, ok, boot.ExitOK)
	}
}

// TestStartLogsAndTelemetry: the logger follows LOG_FORMAT and LOG_LEVEL, carries the
// component and the OS process id, and telemetry is set up under the process's name.
func TestStartLogsAndTelemetry(t *testing.T) {
	noTracing(t)
	var stderr bytes.Buffer
	p := boot.New("proc", &stderr)
	urls := boot.PeerURLs(p.Config)
	token := boot.Token(p.Config)
	code, ok := p.Start(context.Background(), []string{"-log-format", "json", "-log-level", "warn", "-chat-url", "10.0.0.1:9000", "-internal-api-token", "tok"})
	if !ok {
		t.Fatalf("Start = %d, false; want ok:\n%s", code, stderr.String())
	}
	defer p.Close()
	if got := p.Telemetry.ServiceName(); got != "proc" {
		t.Errorf("telemetry service name = %q, want proc", got)
	}
	stderr.Reset()
	p.Log.Info("hidden")
	p.Log.Warn("shown")
	var line map[string]any
	if err := json.Unmarshal(stderr.Bytes(), &line); err != nil {
		t.Fatalf("want one JSON line (info hidden at warn), got %q: %v", stderr.String(), err)
	}
	if line["msg"] != "shown" || line["component"] != "proc" || line["process_id"] == nil {
		t.Errorf("log line = %v, want msg shown, component proc and a process_id", line)
	}
	want := peers.URLs{Chat: "10.0.0.1:9000", Profile: "127.0.0.1:8092", Notify: "127.0.0.1:8093", Presence: "127.0.0.1:8094"}
	if got := urls(); got != want || *token != "tok" {
		t.Errorf("peer URLs %+v and token %q, want %+v and tok", got, *token, want)
	}
}
