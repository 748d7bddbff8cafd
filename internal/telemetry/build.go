package telemetry

import (
	"runtime/debug"
	"strconv"
)

// Build names the build of the running binary, from the build info the Go
// toolchain records: the main module's version and, when it was built in a
// version-controlled checkout, the commit, its time and whether the tree had
// uncommitted changes. Fields it did not record are empty.
type Build struct {
	Version  string // the module version, e.g. v1.2.3 or a pseudo-version; empty for (devel)
	Revision string // vcs.revision: the commit hash
	Time     string // vcs.time: the commit's time, RFC 3339
	Modified bool   // vcs.modified: built with uncommitted changes
}

// ReadBuild reads the build info of the running binary.
func ReadBuild() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Build{}
	}
	return BuildFrom(bi)
}

// BuildFrom reads bi, the build info of this or another binary
// (debug/buildinfo reads a file's).
func BuildFrom(bi *debug.BuildInfo) Build {
	var b Build
	if v := bi.Main.Version; v != "(devel)" {
		b.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified, _ = strconv.ParseBool(s.Value)
		}
	}
	return b
}
