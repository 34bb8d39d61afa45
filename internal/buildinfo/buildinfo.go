// Package buildinfo reports the version of the running cairn binary: the one
// set at link time, else the module version recorded by the Go toolchain,
// else the VCS revision it was built from.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// version may be set at link time:
//
//	go build -ldflags "-X github.com/cairnhq/cairn/internal/buildinfo.version=v0.1.0" ./cmd/cairn
var version string

// Version returns the binary's version: the link-time value if set, the main
// module's version when built with `go install module@version`, a VCS
// revision (with "-dirty" for modified trees) when built from a checkout
// with VCS stamping, and "devel" otherwise.
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		return "devel-" + rev + modified
	}
	return "devel"
}

// GoVersion returns the Go toolchain the binary was built with.
func GoVersion() string { return runtime.Version() }
