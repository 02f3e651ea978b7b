package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charla/charla/shared/config"
)

// Tests here use t.Setenv and t.Chdir, so they cannot run in parallel.

func TestPriorityDotEnvThenEnvThenFlags(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("EDGE_ADDR=127.0.0.1:1111\nWRITE_WAIT=3s\nRATE_BURST=7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WRITE_WAIT", "5s")
	os.Unsetenv("EDGE_ADDR")
	os.Unsetenv("RATE_BURST")
	l := config.New("test")
	addr := l.String("EDGE_ADDR", "127.0.0.1:8080", "listener", config.HostPort)
	wait := l.Duration("WRITE_WAIT", 15*time.Second, "write wait")
	burst := l.Int("RATE_BURST", 40, 1, 1000, "burst")
	if err := l.Parse([]string{"-rate-burst", "9"}); err != nil {
		t.Fatal(err)
	}
	if *addr != "127.0.0.1:1111" {
		t.Errorf("EDGE_ADDR = %q, want the .env value 127.0.0.1:1111", *addr)
	}
	if *wait != 5*time.Second {
		t.Errorf("WRITE_WAIT = %v, want the environment's 5s over .env's 3s", *wait)
	}
	if *burst != 9 {
		t.Errorf("RATE_BURST = %d, want the flag's 9", *burst)
	}
}

func TestBadValueNamesTheVariable(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tc := range []struct {
		env, value, want string
	}{
		{"EDGE_ADDR", "nonsense", "EDGE_ADDR"},
		{"WRITE_WAIT", "fast", "WRITE_WAIT"},
		{"RATE_BURST", "0", "RATE_BURST"},
		{"LOG_FORMAT", "xml", "LOG_FORMAT"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			l := config.New("test")
			l.String("EDGE_ADDR", "127.0.0.1:8080", "listener", config.HostPort)
			l.Duration("WRITE_WAIT", 15*time.Second, "write wait")
			l.Int("RATE_BURST", 40, 1, 1000, "burst")
			l.String("LOG_FORMAT", "text", "format", config.OneOf("json", "text"))
			err := l.Parse(nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "expected") {
				t.Fatalf("Parse() = %v, want an error naming %s and what it expected", err, tc.want)
			}
		})
	}
}

func TestUnknownFlagIsAnError(t *testing.T) {
	t.Chdir(t.TempDir())
	l := config.New("test")
	if err := l.Parse([]string{"-no-such-flag"}); err == nil {
		t.Fatal("Parse accepted an unknown flag")
	}
}
