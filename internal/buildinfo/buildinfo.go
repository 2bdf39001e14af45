// Package buildinfo tells what a binary of this repository was built from: its version,
// commit and build date, set at link time by the Makefile's release builds, or else read
// from the build information Go records. vss-server and vssctl print it with --version,
// and vss-server exports it as the vss_build_info metric.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info is what a binary was built from.
type Info struct {
	// Version is the release (git describe), the module version with go install, or
	// "(devel)".
	Version string
	// Commit is the VCS revision, with "-dirty" for a modified checkout, or "unknown".
	Commit string
	// Date is the commit's time (RFC 3339), or "unknown".
	Date string
	// GoVersion is the Go release that built the binary.
	GoVersion string
}

// Read returns the build information of the running binary. version, commit and date are
// the values set at link time (main.version and so on, empty when not set):
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc1234 -X main.buildDate=2026-01-02T03:04:05Z"
//
// Left empty, they come from the build information Go records (the module version with
// go install, the VCS revision and time when built in a checkout).
func Read(version, commit, date string) Info {
	i := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && info.Main.Version != "" {
			i.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.Date == "":
				i.Date = s.Value
			case s.Key == "vcs.modified" && s.Value == "true" && version == "":
				i.Commit += "-dirty"
			}
		}
	}
	if i.Version == "" {
		i.Version = "(devel)"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if i.Date == "" {
		i.Date = "unknown"
	}
	return i
}

// String is the line --version prints for the program name, e.g.
// "vss-server v1.2.3 (commit abc1234, built 2026-01-02T03:04:05Z, go1.26.0 linux/amd64)".
func (i Info) String(name string) string {
	return fmt.Sprintf("%s %s (commit %s, built %s, %s %s/%s)", name, i.Version, i.Commit, i.Date, i.GoVersion, runtime.GOOS, runtime.GOARCH)
}

// WantsVersion reports whether command-line arguments ask for the version: --version,
// -version or -v before any "--".
func WantsVersion(args []string) bool {
	for _, a := range args {
		switch a {
		case "--version", "-version", "-v":
			return true
		case "--":
			return false
		}
	}
	return false
}
