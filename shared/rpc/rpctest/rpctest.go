// Package rpctest holds helpers for tests of internal RPC handlers. Only tests import it.
package rpctest

import (
	"net/http"
	"sync"
)

// Encodings records the Content-Encoding of every response a client receives, so that a
// test can tell which replies a handler compressed.
type Encodings struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	seen []string
}

// RecordEncodings makes client's transport record the responses' encodings.
func RecordEncodings(client *http.Client) *Encodings {
	rt := client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	e := &Encodings{rt: rt}
	client.Transport = e
	return e
}

// RoundTrip implements http.RoundTripper.
func (e *Encodings) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := e.rt.RoundTrip(req)
	if err == nil {
		e.mu.Lock()
		e.seen = append(e.seen, res.Header.Get("Content-Encoding"))
		e.mu.Unlock()
	}
	return res, err
}

// Last returns the Content-Encoding of the latest response ("" before any).
func (e *Encodings) Last() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) == 0 {
		return ""
	}
	return e.seen[len(e.seen)-1]
}
