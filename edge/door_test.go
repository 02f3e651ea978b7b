package edge

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/charla/charla/edge/edgemetrics"
	"github.com/charla/charla/edge/internal/door"
	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/telemetry"
	"github.com/charla/charla/shared/telemetry/telemetrytest"
)

// TestFailedHandshakesGet429: a client that keeps failing handshakes gets 429 as JSON,
// before the upgrade and before any token lookup; each refusal is counted by its reason,
// every reason present from the start.
func TestFailedHandshakesGet429(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tel, err := telemetry.Setup(context.Background(), "edge-test", telemetry.WithoutGlobals())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	te := startEdge(t, func(c *Config) {
		c.Door = door.Config{Rate: 1, Burst: 2}
		c.Metrics = edgemetrics.New(tel)
	})
	url := "http" + strings.TrimPrefix(te.url, "ws") + "?token=nope"
	get := func() (int, map[string]any) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body
	}
	for i := range 2 {
		if code, _ := get(); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, code)
		}
	}
	code, body := get()
	if code != http.StatusTooManyRequests || body["code"] != float64(429) || body["message"] == "" {
		t.Fatalf("after the burst: status %d body %v, want 429 {\"code\":429,\"message\":...}", code, body)
	}
	m := telemetrytest.Scrape(t, tel.MetricsHandler())
	const name = "charla_edge_handshakes_refused_total"
	for _, reason := range RefusalReasons() {
		want := 0.0
		switch reason {
		case "invalid_token":
			want = 2
		case "too_many_failures":
			want = 1
		}
		label := `reason="` + reason + `"`
		if !m.Has(name, label) {
			t.Errorf("%s{%s} absent, want it from the start\n%s", name, label, m.Grep(name))
		} else if got := m.Sum(name, label); got != want {
			t.Errorf("%s{%s}: got %v, want %v", name, label, got, want)
		}
	}
}

func TestDoorConfig(t *testing.T) {
	t.Parallel()
	l := config.New("test")
	get := DeclareConfig(l)
	if err := l.Parse([]string{"-trusted-proxies", "10.0.0.0/8, 192.168.1.7", "-handshake-fail-rate", "2.5", "-handshake-fail-burst", "5"}); err != nil {
		t.Fatal(err)
	}
	d := get().Door
	if d.Rate != 2.5 || d.Burst != 5 || len(d.TrustedProxies) != 2 || d.TrustedProxies[1].String() != "192.168.1.7/32" {
		t.Errorf("got %+v", d)
	}
	l = config.New("test")
	DeclareConfig(l)
	if err := l.Parse([]string{"-trusted-proxies", "10.0.0.0/8, proxy.local"}); err == nil || !strings.Contains(err.Error(), "proxy.local") {
		t.Errorf("bad TRUSTED_PROXIES: got %v, want an error naming proxy.local", err)
	}
}
