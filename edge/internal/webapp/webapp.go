// Package webapp serves the browser app of web/app at the edge's root. Its built files are
// committed in dist (like generated code: `make web` rebuilds them, `make web-check` fails
// when they are stale) and embedded, so the edge needs nothing beside its binary.
//
// Every answer carries a Content-Security-Policy that allows only the page's own scripts,
// styles and WebSocket, nosniff and no referrer. Files under assets/ have content hashes in
// their names and are cached for a year; everything else (index.html) is revalidated on
// every load with its ETag.
package webapp

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// file is one servable file, read once.
type file struct {
	data        []byte
	etag        string
	contentType string
	immutable   bool
}

// contentTypes are the types of the files a Vite build produces; a file of another kind is
// not served (it would otherwise get a guessed type).
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".json":        "application/json",
	".webmanifest": "application/manifest+json",
	".txt":         "text/plain; charset=utf-8",
	".woff2":       "font/woff2",
}

// Handler serves the app: "/" is index.html, other paths are files of dist; anything else
// is 404. Mount it on "GET /" (which also answers HEAD); more specific routes win.
func Handler() http.Handler {
	files, err := load(dist, "dist")
	if err != nil {
		// The files are embedded at build time: failing here is a broken build.
		panic(fmt.Sprintf("webapp: %v", err))
	}
	return &handler{files: files}
}

// load reads every file under root of fsys, keyed by its URL path.
func load(fsys fs.FS, root string) (map[string]*file, error) {
	files := make(map[string]*file)
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		sum := sha256.Sum256(data)
		rel := strings.TrimPrefix(p, root)
		files[rel] = &file{
			data:        data,
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
			contentType: ct,
			immutable:   strings.HasPrefix(rel, "/assets/"),
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if files["/index.html"] == nil {
		return nil, fmt.Errorf("%s/index.html is missing: run make web", root)
	}
	return files, nil
}

type handler struct {
	files map[string]*file
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/" {
		p = "/index.html"
	}
	setSecurityHeaders(w.Header(), r.Host)
	f := h.files[p]
	if f == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("404 page not found\n"))
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("ETag", f.etag)
	if f.immutable {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	// ServeContent answers If-None-Match (304), HEAD and ranges.
	http.ServeContent(w, r, p, time.Time{}, bytes.NewReader(f.data))
}

// hostPattern is what a Host header may hold to be echoed into the policy.
var hostPattern = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// setSecurityHeaders sets the policy of every answer. connect-src names the page's own
// WebSocket origins explicitly because older browsers do not let 'self' cover ws: and wss:.
func setSecurityHeaders(h http.Header, host string) {
	connect := "'self'"
	if hostPattern.MatchString(host) {
		connect += " ws://" + host + " wss://" + host
	}
	h.Set("Content-Security-Policy", strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data: https: http:", // profile pictures are any http(s) URL
		"font-src 'self'",
		"connect-src " + connect,
		"manifest-src 'self'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; "))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}
