package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestWantsVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--version"}, true},
		{[]string{"-version"}, true},
		{[]string{"-v"}, true},
		{[]string{"x.toml", "--listen", ":1", "--version"}, true},
		{[]string{"--", "--version"}, false},
		{[]string{"--versions"}, false},
		{nil, false},
	} {
		if got := WantsVersion(tc.args); got != tc.want {
			t.Errorf("WantsVersion(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestReadAndString(t *testing.T) {
	t.Parallel()
	// Values set at link time win over Go's build information.
	i := Read("v1.2.3", "0123abc", "2001-02-03T04:05:06Z")
	if i.Version != "v1.2.3" || i.Commit != "0123abc" || i.Date != "2001-02-03T04:05:06Z" || i.GoVersion != runtime.Version() {
		t.Fatalf("Read with link-time values = %+v", i)
	}
	want := "vssctl v1.2.3 (commit 0123abc, built 2001-02-03T04:05:06Z, " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
	if got := i.String("vssctl"); got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	// Without them every field still says something (a test binary has no VCS stamp).
	i = Read("", "", "")
	if i.Version == "" || i.Commit == "" || i.Date == "" || strings.Contains(i.String("x"), "  ") {
		t.Fatalf("Read without link-time values = %+v", i)
	}
}
