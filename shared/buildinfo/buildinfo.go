// Package buildinfo tells which build of Charla is running: the version, the source
// revision and the Go release, for every binary's -version flag and for the
// charla_build_info metric.
//
// The values come from the build information the Go toolchain embeds (runtime/debug):
// the main module's version (a tag when built with `go install module@version`, or the
// pseudo-version Go derives from the VCS) and the vcs.revision and vcs.modified settings.
// Builds made without VCS stamping (-buildvcs=false, or a container build without .git)
// can set both at link time:
//
//	go build -ldflags "-X github.com/charla/charla/shared/buildinfo.version=v1.2.0 \
//	    -X github.com/charla/charla/shared/buildinfo.revision=$(git rev-parse HEAD)" ./edge/cmd/edge
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// Set at link time with -X; they win over the embedded build information.
var (
	version  string
	revision string
)

// Unknown stands for a value the build did not record.
const Unknown = "unknown"

// Info describes one build.
type Info struct {
	// Version is the release (v1.2.0), a Go pseudo-version, or "devel" for a local build.
	Version string
	// Revision is the source revision (a commit hash) or Unknown.
	Revision string
	// Modified is true when the build had uncommitted changes.
	Modified bool
	// GoVersion is the Go release that built the binary (go1.26.0).
	GoVersion string
}

var (
	once   sync.Once
	cached Info
)

// Read returns the build information of the running binary.
func Read() Info {
	once.Do(func() {
		bi, ok := debug.ReadBuildInfo()
		cached = fromBuildInfo(bi, ok, version, revision)
	})
	return cached
}

// fromBuildInfo derives an Info from what the toolchain embedded and the link-time values.
func fromBuildInfo(bi *debug.BuildInfo, ok bool, linkVersion, linkRevision string) Info {
	info := Info{Version: "devel", Revision: Unknown, GoVersion: runtime.Version()}
	if ok && bi != nil {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if linkVersion != "" {
		info.Version = linkVersion
	}
	if linkRevision != "" {
		info.Revision = linkRevision
	}
	return info
}

// ShortRevision is the revision cut to 12 characters, as git prints it, with "-dirty"
// appended when the build had uncommitted changes.
func (i Info) ShortRevision() string {
	r := i.Revision
	if len(r) > 12 {
		r = r[:12]
	}
	if i.Modified {
		r += "-dirty"
	}
	return r
}

// String is what -version prints after the program's name:
// "v1.2.0 (revision 0123456789ab, go1.26.0)".
func (i Info) String() string {
	return fmt.Sprintf("%s (revision %s, %s)", i.Version, i.ShortRevision(), i.GoVersion)
}
