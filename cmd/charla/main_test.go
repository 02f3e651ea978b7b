package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// watchWriter keeps what is written and closes seen once it contains marker.
type watchWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
	once   sync.Once
}

func newWatchWriter(marker string) *watchWriter {
	return &watchWriter{marker: marker, seen: make(chan struct{})}
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.marker != "" && strings.Contains(w.buf.String(), w.marker) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestRunBannerAndInterrupt runs the one-process binary's run as make run does: the banner
// (addresses, one token per demo user, an example) is all of stdout, the logs go to
// stderr, and an interrupt drains and exits 0.
func TestRunBannerAndInterrupt(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	stdout, stderr := newWatchWriter("Ctrl-C stops."), newWatchWriter("")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := false
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, func() { stopped = true }, []string{
			"-edge-addr", "127.0.0.1:0", "-rpc-addr", "127.0.0.1:0",
			"-database-url", "sqlite://" + filepath.Join(dir, "charla.db"),
		}, stdout, stderr)
	}()
	select {
	case <-stdout.seen:
	case code := <-exit:
		t.Fatalf("exited with %d before the banner:\n%s\n%s", code, stdout, stderr)
	}
	cancel() // Ctrl-C
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d after an interrupt, want 0:\n%s", code, stderr)
	}
	if !stopped {
		t.Error("the signal handling was not restored for a second Ctrl-C")
	}

	out := stdout.String()
	if strings.Contains(out, "level=") || strings.Contains(out, "msg=") {
		t.Errorf("log lines on stdout:\n%s", out)
	}
	if !regexp.MustCompile(`ws://127\.0\.0\.1:\d+/ws\?token=TOKEN`).MatchString(out) {
		t.Errorf("banner lacks the WebSocket URL:\n%s", out)
	}
	token := regexp.MustCompile(`(?m)^\s+(alice|bob|carol|dave)\s+id \d+\s+(\S{40,})$`)
	if got := token.FindAllStringSubmatch(out, -1); len(got) != 4 {
		t.Errorf("banner has %d demo tokens, want one per demo user:\n%s", len(got), out)
	} else if !strings.Contains(out, "token="+got[0][2]) {
		t.Errorf("the example does not use alice's token:\n%s", out)
	}
	if strings.Count(out, "Charla is running") != 1 {
		t.Errorf("want one banner:\n%s", out)
	}
	if errs := stderr.String(); !strings.Contains(errs, "shutting down") || !strings.Contains(errs, "level=INFO") {
		t.Errorf("stderr lacks the logs:\n%s", errs)
	}
}

// TestRunDeclaresEverySetting: the one-process binary reads the settings the services
// read in their own binaries (the history, the connection cap, notification retention),
// so a bad value stops it with exit code 2 and a message naming the variable instead of
// being ignored.
func TestRunDeclaresEverySetting(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	for _, tt := range []struct {
		flag, value, env string
	}{
		{"-resume-max-events", "5", "RESUME_MAX_EVENTS"},
		{"-resume-max-age", "soon", "RESUME_MAX_AGE"},
		{"-max-connections-per-user", "0", "MAX_CONNECTIONS_PER_USER"},
		{"-notify-retention-max-age", "90d", "NOTIFY_RETENTION_MAX_AGE"},
		{"-notify-retention-max-per-user", "0", "NOTIFY_RETENTION_MAX_PER_USER"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), func() {}, []string{tt.flag, tt.value}, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tt.env) {
			t.Errorf("%s %s: exit %d, stderr %q; want 2 and a message naming %s", tt.flag, tt.value, code, stderr.String(), tt.env)
		}
	}
}
