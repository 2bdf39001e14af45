package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version, commit and buildDate are set at link time by make release:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc1234 -X main.buildDate=2026-01-02T03:04:05Z"
//
// Left empty, they come from the build information Go records (the module version
// with go install, the VCS revision and time when built in a checkout).
var version, commit, buildDate string

// buildInfo returns the version, commit and build date of this binary.
func buildInfo() (v, c, d string) {
	v, c, d = version, commit, buildDate
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && c == "":
				c = s.Value
			case s.Key == "vcs.time" && d == "":
				d = s.Value
			case s.Key == "vcs.modified" && s.Value == "true" && version == "":
				c += "-dirty"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if c == "" {
		c = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return v, c, d
}

// versionString is what vss-server --version prints.
func versionString() string {
	v, c, d := buildInfo()
	return fmt.Sprintf("vss-server %s (commit %s, built %s, %s %s/%s)", v, c, d, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// wantsVersion reports whether the arguments ask for the version.
func wantsVersion(args []string) bool {
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
