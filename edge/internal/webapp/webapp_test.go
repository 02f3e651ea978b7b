package webapp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, path string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080"+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func testFS() fstest.MapFS {
	return fstest.MapFS{
		"dist/index.html":           {Data: []byte("<!doctype html><title>x</title>")},
		"dist/favicon.svg":          {Data: []byte("<svg/>")},
		"dist/assets/index-abc.js":  {Data: []byte("console.log(1)")},
		"dist/assets/index-abc.css": {Data: []byte("body{}")},
		"dist/assets/notes.md":      {Data: []byte("not served")},
	}
}

func testHandler(t *testing.T) http.Handler {
	t.Helper()
	files, err := load(testFS(), "dist")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return &handler{files: files}
}

func TestServesFilesWithTypesAndCaching(t *testing.T) {
	t.Parallel()
	h := testHandler(t)
	cases := []struct {
		path, contentType, cache, body string
	}{
		{"/", "text/html; charset=utf-8", "no-cache", "<!doctype html><title>x</title>"},
		{"/index.html", "text/html; charset=utf-8", "no-cache", "<!doctype html><title>x</title>"},
		{"/favicon.svg", "image/svg+xml", "no-cache", "<svg/>"},
		{"/assets/index-abc.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "console.log(1)"},
		{"/assets/index-abc.css", "text/css; charset=utf-8", "public, max-age=31536000, immutable", "body{}"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			t.Parallel()
			rec := get(t, h, c.path, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status: got %d, want 200", rec.Code)
			}
			if got := rec.Header().Get("Content-Type"); got != c.contentType {
				t.Errorf("Content-Type: got %q, want %q", got, c.contentType)
			}
			if got := rec.Header().Get("Cache-Control"); got != c.cache {
				t.Errorf("Cache-Control: got %q, want %q", got, c.cache)
			}
			if got := rec.Body.String(); got != c.body {
				t.Errorf("body: got %q, want %q", got, c.body)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options: got %q, want nosniff", got)
			}
		})
	}
}

func TestUnknownPathsAndKindsAre404(t *testing.T) {
	t.Parallel()
	h := testHandler(t)
	for _, p := range []string{"/nope", "/assets/notes.md", "/assets/", "/dist/index.html", "/../webapp.go"} {
		rec := get(t, h, p, nil)
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: got %d, want 404", p, rec.Code)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); csp == "" {
			t.Errorf("%s: a 404 has no Content-Security-Policy", p)
		}
	}
}

func TestETagRevalidation(t *testing.T) {
	t.Parallel()
	h := testHandler(t)
	first := get(t, h, "/", nil)
	etag := first.Header().Get("ETag")
	if !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag: got %q, want a quoted strong tag", etag)
	}
	again := get(t, h, "/", map[string]string{"If-None-Match": etag})
	if again.Code != http.StatusNotModified {
		t.Errorf("If-None-Match with the current tag: got %d, want 304", again.Code)
	}
	stale := get(t, h, "/", map[string]string{"If-None-Match": `"other"`})
	if stale.Code != http.StatusOK {
		t.Errorf("If-None-Match with another tag: got %d, want 200", stale.Code)
	}
}

func TestContentSecurityPolicy(t *testing.T) {
	t.Parallel()
	h := testHandler(t)
	csp := get(t, h, "/", nil).Header().Get("Content-Security-Policy")
	for _, want := range []string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080",
		"frame-ancestors 'none'",
		"base-uri 'none'",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("policy %q allows inline code", csp)
	}
	// A Host that could inject into the header is not echoed.
	req := httptest.NewRequest(http.MethodGet, "http://x/", nil)
	req.Host = "evil.example; script-src *"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	got := rec.Header().Get("Content-Security-Policy")
	if strings.Contains(got, "evil") || !strings.Contains(got, "connect-src 'self';") {
		t.Errorf("with a hostile Host: got %q, want connect-src 'self' only", got)
	}
}

func TestLoadNeedsIndex(t *testing.T) {
	t.Parallel()
	fsys := testFS()
	delete(fsys, "dist/index.html")
	if _, err := load(fsys, "dist"); err == nil || !strings.Contains(err.Error(), "index.html") {
		t.Errorf("load without index.html: got %v, want an error naming index.html", err)
	}
}

// TestEmbeddedBuild checks the committed build: its index.html loads only hashed assets
// that are embedded too, so the page works when served from the binary alone.
func TestEmbeddedBuild(t *testing.T) {
	t.Parallel()
	h := Handler()
	index := get(t, h, "/", nil)
	if index.Code != http.StatusOK {
		t.Fatalf("GET /: got %d, want 200", index.Code)
	}
	body := index.Body.String()
	if strings.Contains(body, "<script>") || strings.Contains(body, "<style") {
		t.Errorf("index.html has inline code, which the policy blocks:\n%s", body)
	}
	refs := 0
	for _, part := range strings.Split(body, `"`) {
		if !strings.HasPrefix(part, "/assets/") {
			continue
		}
		refs++
		if rec := get(t, h, part, nil); rec.Code != http.StatusOK {
			t.Errorf("%s referenced by index.html: got %d, want 200", part, rec.Code)
		}
	}
	if refs < 2 {
		t.Errorf("index.html references %d assets, want a script and a stylesheet:\n%s", refs, body)
	}
}
