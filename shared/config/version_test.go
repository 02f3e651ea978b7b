package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/charla/charla/shared/buildinfo"
)

func TestVersionFlagPrintsBuildInfoAndSkipsValidation(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("TEST_PORT_ADDR", "not an address")
	l := New("edge")
	var out bytes.Buffer
	l.out = &out
	l.String("TEST_PORT_ADDR", "127.0.0.1:1", "an address", HostPort)
	err := l.Parse([]string{"-version"})
	if !errors.Is(err, ErrVersion) || !Exit(err) {
		t.Fatalf("Parse(-version) = %v, want ErrVersion (Exit true)", err)
	}
	want := "edge " + buildinfo.Read().String() + "\n"
	if got := out.String(); got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
	if !strings.Contains(want, buildinfo.Read().GoVersion) {
		t.Errorf("version line %q lacks the Go version", want)
	}
}

func TestExit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{{ErrHelp, true}, {ErrVersion, true}, {nil, false}, {errors.New("EDGE_ADDR: bad"), false}} {
		if got := Exit(tc.err); got != tc.want {
			t.Errorf("Exit(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
