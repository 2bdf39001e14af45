package main

import "github.com/govss/vss/internal/buildinfo"

// version, commit and buildDate are set at link time by the Makefile
// (see internal/buildinfo.Read); empty, they come from Go's build information.
var version, commit, buildDate string

// build is what this binary was built from.
func build() buildinfo.Info { return buildinfo.Read(version, commit, buildDate) }

// versionString is what vss-server --version prints.
func versionString() string { return build().String("vss-server") }
