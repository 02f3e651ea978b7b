package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestWebAppServedBesideTheEdgeRoutes: the edge serves the web app at / with its security
// headers, while /ws, /health and unknown paths keep their own answers.
func TestWebAppServedBesideTheEdgeRoutes(t *testing.T) {
	t.Parallel()
	sys := startEdgeSystem(t, nil)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(sys.HTTPURL(path))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	res, body := get("/")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: got %d %q, want 200 text/html", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !strings.Contains(body, `<div id="root">`) {
		t.Errorf("GET /: got a body without the app's root:\n%s", body)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if want := "connect-src 'self' ws://" + sys.EdgeAddr; !strings.Contains(csp, want) {
		t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
	}

	if res, _ := get("/health"); res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /health: got Content-Type %q, want application/json", res.Header.Get("Content-Type"))
	}
	// A plain GET of /ws is the hub's (no upgrade: 400 or 401), not the app's page.
	if res, body := get("/ws"); res.StatusCode == http.StatusOK || strings.Contains(body, "<html") {
		t.Errorf("GET /ws without an upgrade: got %d %q, want the hub's refusal", res.StatusCode, body)
	}
	if res, _ := get("/no/such/page"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /no/such/page: got %d, want 404", res.StatusCode)
	}
}
