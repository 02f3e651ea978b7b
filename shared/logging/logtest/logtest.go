// Package logtest captures what a logger writes, for tests that check log lines: that a
// token never appears, that an outcome or a user id is there, that lines carry trace ids.
// The logger is the production one (logging.New, JSON, debug level), so the redaction and
// trace correlation under test are the real ones.
package logtest

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/charla/charla/shared/logging"
)

// Recorder holds the lines written to a logger from New. It is safe for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer for the logger.
func (r *Recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

// New returns a JSON, debug-level logger built by logging.New and the Recorder it writes to.
// On failure the captured lines are printed with the test's log.
func New(tb testing.TB) (*slog.Logger, *Recorder) {
	tb.Helper()
	rec := &Recorder{}
	log, err := logging.New(rec, logging.Options{Format: "json", Level: "debug"})
	if err != nil {
		tb.Fatalf("logtest: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("captured log:\n%s", rec.String())
		}
	})
	return log, rec
}

// String is everything written so far.
func (r *Recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// Contains reports whether any line contains s (anywhere: message, keys or values).
func (r *Recorder) Contains(s string) bool { return strings.Contains(r.String(), s) }

// Lines returns each line decoded as a JSON object. A line that does not decode fails tb.
func (r *Recorder) Lines(tb testing.TB) []map[string]any {
	tb.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(r.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			tb.Fatalf("logtest: line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// Find returns the decoded lines whose message is msg.
func (r *Recorder) Find(tb testing.TB, msg string) []map[string]any {
	tb.Helper()
	var found []map[string]any
	for _, l := range r.Lines(tb) {
		if l[slog.MessageKey] == msg {
			found = append(found, l)
		}
	}
	return found
}
