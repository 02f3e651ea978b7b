package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	t.Parallel()
	stamped := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/charla/charla/edge", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	local := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}
	tests := []struct {
		name                 string
		bi                   *debug.BuildInfo
		ok                   bool
		linkVersion, linkRev string
		wantVersion, wantRev string
		wantModified         bool
		wantString           string
	}{
		{"stamped", stamped, true, "", "", "v1.2.0", "0123456789abcdef0123", true, "v1.2.0 (revision 0123456789ab-dirty, go1.26.0)"},
		{"local build", local, true, "", "", "devel", Unknown, false, "devel (revision unknown, go1.26.0)"},
		{"link-time values win", stamped, true, "v9.9.9", "fedcba", "v9.9.9", "fedcba", true, "v9.9.9 (revision fedcba-dirty, go1.26.0)"},
		{"no build info", nil, false, "v1.0.0", "abc", "v1.0.0", "abc", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fromBuildInfo(tt.bi, tt.ok, tt.linkVersion, tt.linkRev)
			if got.Version != tt.wantVersion || got.Revision != tt.wantRev || got.Modified != tt.wantModified {
				t.Errorf("got %+v, want version %q revision %q modified %v", got, tt.wantVersion, tt.wantRev, tt.wantModified)
			}
			if got.GoVersion == "" {
				t.Error("GoVersion is empty")
			}
			if tt.wantString != "" && got.String() != tt.wantString {
				t.Errorf("String() = %q, want %q", got.String(), tt.wantString)
			}
		})
	}
}

func TestReadInTestBinary(t *testing.T) {
	t.Parallel()
	got := Read()
	if !strings.HasPrefix(got.GoVersion, "go") {
		t.Errorf("GoVersion = %q, want go1.x", got.GoVersion)
	}
	if got.Version == "" || got.Revision == "" {
		t.Errorf("Read() = %+v, want every field set", got)
	}
}
