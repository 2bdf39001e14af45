package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govss/vss/client/vsstest"
)

// TestREADMEExamples runs the vssctl lines of the README, as a shell runs them, against
// a fresh server without authentication (what `make run` starts), and checks that each
// prints exactly what the README shows in the "# " lines after it: nothing when none
// follow. The test binary stands in for bin/vssctl (see TestMain).
func TestREADMEExamples(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "### The same with `vssctl`")
	if start < 0 {
		t.Fatal("the README has no vssctl section")
	}
	section = section[start:]
	section = section[strings.Index(section, "```sh")+len("```sh"):]
	section = section[:strings.Index(section, "```")]

	srv := vsstest.Start(t, vsstest.Config{NoAuth: true})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vssctl := filepath.Join(dir, "vssctl")
	if err := os.WriteFile(vssctl, []byte("#!/bin/sh\nVSSCTL_TEST_MAIN=1 exec '"+self+"' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	work := t.TempDir()
	lines := strings.Split(section, "\n")
	ran := 0
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "bin/vssctl ") {
			t.Fatalf("README line %q does not run bin/vssctl", line)
		}
		var want []string
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "# ") {
			i++
			want = append(want, strings.TrimPrefix(lines[i], "# "))
		}
		cmd := exec.Command("bash", "-c", strings.ReplaceAll(line, "bin/vssctl ", vssctl+" "))
		cmd.Dir = work // where examples may write files (keygen --file)
		cmd.Env = []string{"VSSCTL_SERVER=" + srv.URL}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "VSSCTL_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, _ := cmd.CombinedOutput() // exit codes are part of the shown output
		ran++
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(out) == 0 {
			got = nil
		}
		if !sameFields(got, want) {
			t.Errorf("%s\n got: %q\nwant: %q", line, got, want)
		}
	}
	if ran < 8 {
		t.Fatalf("ran %d vssctl lines of the README, want at least 8", ran)
	}
}

// sameFields compares lines word by word, so the README may align columns with spaces
// where vssctl prints tabs.
func sameFields(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if strings.Join(strings.Fields(got[i]), " ") != strings.Join(strings.Fields(want[i]), " ") {
			return false
		}
	}
	return true
}
