package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// helpText returns what vss-server --help prints.
func helpText(t *testing.T) string {
	t.Helper()
	var stderr bytes.Buffer
	_, _, err := parseConfig([]string{"--help"}, func(string) string { return "" }, &stderr)
	var help *helpRequest
	if !errors.As(err, &help) || !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseConfig(--help) = %v, want a help request", err)
	}
	if stderr.Len() > 0 {
		t.Fatalf("--help wrote to standard error: %q", stderr.String())
	}
	return help.text
}

// helpFlag is one flag as --help or the README's configuration reference shows it.
type helpFlag struct{ topic, name, env string }

var (
	envPattern  = regexp.MustCompile(`\(env (VSS_[A-Z0-9_]+)`)
	flagPattern = regexp.MustCompile("`(--[a-z0-9-]+)`")
	varPattern  = regexp.MustCompile("`(VSS_[A-Z0-9_]+)")
)

// parseHelp reads the topics, flags and environment variables of --help.
func parseHelp(t *testing.T, text string) []helpFlag {
	t.Helper()
	var flags []helpFlag
	topic := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "  --"):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "  "), " ")
			flags = append(flags, helpFlag{topic: topic, name: name})
		case strings.HasPrefix(line, "        ") && len(flags) > 0:
			// A description may wrap between "(env" and the name: join its lines.
			f := &flags[len(flags)-1]
			f.env += strings.TrimSpace(line) + " "
		case strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " "):
			topic = strings.TrimSuffix(line, ":")
		}
	}
	for i := range flags {
		m := envPattern.FindStringSubmatch(flags[i].env)
		flags[i].env = ""
		if m != nil {
			flags[i].env = m[1]
		}
	}
	return flags
}

// TestHelpFilesEveryFlag checks that --help lists every flag once, under a topic of its
// own (none under "Other"), and that every flag but --config and --version names its
// environment variable.
func TestHelpFilesEveryFlag(t *testing.T) {
	t.Parallel()
	flags := parseHelp(t, helpText(t))
	if len(flags) < 40 {
		t.Fatalf("--help lists %d flags, want at least 40", len(flags))
	}
	var topics []string
	seen := map[string]bool{}
	for _, f := range flags {
		if seen[f.name] {
			t.Errorf("%s is listed twice", f.name)
		}
		seen[f.name] = true
		if f.topic == otherTopic || f.topic == "" {
			t.Errorf("%s has no topic: add it to helpTopics", f.name)
		}
		if (f.env == "") != (f.name == "--config" || f.name == "--version") {
			t.Errorf("%s: environment variable %q", f.name, f.env)
		}
		if len(topics) == 0 || topics[len(topics)-1] != f.topic {
			topics = append(topics, f.topic)
		}
	}
	var want []string
	for _, topic := range helpTopics {
		want = append(want, topic.title)
	}
	if !slices.Equal(topics, want) {
		t.Errorf("topics in --help: %q, want %q", topics, want)
	}
}

// TestREADMEConfigurationMatchesHelp checks the README's configuration reference against
// --help: the same flags under the same topics, each with the same environment variable.
func TestREADMEConfigurationMatchesHelp(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Configuration\n")
	if start < 0 {
		t.Fatal("the README has no Configuration section")
	}
	section = section[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var documented []helpFlag
	topic := ""
	for _, line := range strings.Split(section, "\n") {
		if t, ok := strings.CutPrefix(line, "### "); ok {
			topic = t
			continue
		}
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.Split(line, "|")
		name := flagPattern.FindStringSubmatch(cells[1])
		env := varPattern.FindStringSubmatch(cells[2])
		if name == nil {
			t.Fatalf("README row without a flag: %s", line)
		}
		f := helpFlag{topic: topic, name: name[1]}
		if env != nil {
			f.env = env[1]
		}
		documented = append(documented, f)
	}
	help := parseHelp(t, helpText(t))
	for _, f := range help {
		if !slices.Contains(documented, f) {
			t.Errorf("--help has %+v; the README's configuration reference does not", f)
		}
	}
	for _, f := range documented {
		if !slices.Contains(help, f) {
			t.Errorf("the README's configuration reference has %+v; --help does not", f)
		}
	}
}

// TestBinaryHelpVersionAndBuildInfo runs the real binary, built with a version as make
// release builds it: --help goes to standard output with exit code 0, a flag error to
// standard error with exit code 2, --version prints the version given at link time, and
// the server exports it as vss_build_info.
func TestBinaryHelpVersionAndBuildInfo(t *testing.T) {
	t.Parallel()
	bin := buildServer(t, "-X main.version=v0.0.0-test -X main.commit=0123456789abcdef -X main.buildDate=2001-02-03T04:05:06Z")
	run := func(args ...string) (code int, stdout, stderr string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		cmd.Dir = t.TempDir()
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errOut.String()
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"--listen", "127.0.0.1:1", "--help"}} {
		code, out, errOut := run(args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: vss-server") || !strings.Contains(out, "\nLimits and timeouts:\n  --max-body-bytes") {
			t.Errorf("vss-server %q: exit %d, stderr %q, stdout starts %.80q", args, code, errOut, out)
		}
	}
	for _, args := range [][]string{{"--no-such-flag"}, {"--max-body-bytes", "lots"}, {"extra-argument"}} {
		code, out, errOut := run(args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "Run 'vss-server --help'") || strings.Contains(errOut, "Limits and timeouts") {
			t.Errorf("vss-server %q: exit %d, stdout %q, stderr %q; want exit 2 and a short message", args, code, out, errOut)
		}
	}
	want := "vss-server v0.0.0-test (commit 0123456789abcdef, built 2001-02-03T04:05:06Z, " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if code, out, _ := run("--version"); code != 0 || out != want {
		t.Errorf("--version: exit %d, %q, want %q", code, out, want)
	}

	addr := freeAddr(t)
	runServer(t, bin, []string{"--database-url", "memory:", "--auth", "none"}, map[string]string{"VSS_BIND_ADDRESS": addr})
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	line := `vss_build_info{commit="0123456789abcdef",goversion="` + runtime.Version() + `",version="v0.0.0-test"} 1`
	if !strings.Contains(string(body), "\n"+line+"\n") {
		t.Errorf("/metrics has no line %s", line)
	}
}
