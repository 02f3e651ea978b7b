package edge

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/charla/charla/edge/internal/door"
	"github.com/charla/charla/shared/config"
)

// TestFailedHandshakesGet429: a client that keeps failing handshakes gets 429 as JSON,
// before the upgrade and before any token lookup.
func TestFailedHandshakesGet429(t *testing.T) {
	t.Parallel()
	te := startEdge(t, func(c *Config) { c.Door = door.Config{Rate: 1, Burst: 2} })
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
