package main

import "github.com/govss/vss/internal/buildinfo"

// version, commit and buildDate are set at link time by the Makefile, as vss-server's
// are (see internal/buildinfo.Read); empty, they come from Go's build information.
var version, commit, buildDate string

// versionString is what vssctl --version prints.
func versionString() string {
	return buildinfo.Read(version, commit, buildDate).String("vssctl")
}
