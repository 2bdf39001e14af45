package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/govss/vss/internal/textwrap"
)

// helpIntro opens vss-server --help.
const helpIntro = `Usage: vss-server [config.toml] [flags]
       vss-server admin (usage | delete-user | export | import) ...
                                         (see vss-server admin --help)
       vss-server healthcheck [URL]      (exit 0 if the server is ready)

Serves the VSS HTTP API at /vss/ and the Connect/gRPC/gRPC-Web service vss.v1.VssService
on one port. Flags override the VSS_ environment variables named below, which override the
configuration file (the reference VSS server's vss-server-config.toml; see the README).
`

// helpTopics are the sections of vss-server --help, in order, each with its flags in the
// order it lists them. The flags are defined in parseConfig, in any order: a new flag
// needs its name in one list here, and nothing else moves.
var helpTopics = []struct {
	title string
	flags []string
}{
	{"Server", []string{"listen", "config", "shutdown-timeout", "grpc-reflection", "version"}},
	{"Storage", []string{"database-url", "data-dir", "db-max-conns", "group-commit"}},
	{"Authentication", []string{
		"auth", "jwt-public-key-file", "jwks", "jwt-leeway", "auth-jwt-pubkey-subjects",
		"lnurl-auth", "public-url", "lnurl-token-ttl",
	}},
	{"Quotas and rate limits", []string{"quota-max-bytes", "quota-max-keys", "rate-limit", "rate-burst"}},
	{"Change feed and leases", []string{"feed-retention", "watch-max-streams-per-user", "watch-heartbeat", "watch-send-timeout"}},
	{"Limits and timeouts", []string{
		"max-body-bytes", "read-header-timeout", "body-progress-bytes", "body-progress-timeout",
		"write-timeout", "idle-timeout", "max-header-bytes",
		"max-concurrent-requests", "max-concurrent-per-user", "max-concurrent-public", "max-concurrent-per-address",
		"max-upload-bytes", "max-upload-bytes-per-user", "max-connections", "max-connections-per-address",
		"queue-timeout",
	}},
	{"TLS", []string{"tls-cert-file", "tls-key-file"}},
	{"Browsers and the store explorer", []string{"cors-origins", "explorer", "explorer-allowed-servers"}},
	{"Observability", []string{"log-level", "log-format", "log-file", "metrics", "metrics-listen"}},
}

// otherTopic is where --help lists the flags that helpTopics does not name;
// TestHelpFilesEveryFlag fails while there are any.
const otherTopic = "Other"

// writeHelp prints vss-server --help: the introduction, then the flags of fs by topic.
func writeHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, helpIntro)
	listed := map[string]bool{}
	for _, topic := range helpTopics {
		fmt.Fprintf(w, "\n%s:\n", topic.title)
		for _, name := range topic.flags {
			if f := fs.Lookup(name); f != nil && !listed[name] {
				listed[name] = true
				writeFlag(w, f)
			}
		}
	}
	var other []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !listed[f.Name] {
			other = append(other, f)
		}
	})
	if len(other) > 0 {
		fmt.Fprintf(w, "\n%s:\n", otherTopic)
		for _, f := range other {
			writeFlag(w, f)
		}
	}
}

// writeFlag prints one flag as flag.PrintDefaults would, with two dashes and its
// description wrapped to fit a terminal.
func writeFlag(w io.Writer, f *flag.Flag) {
	arg, usage := flag.UnquoteUsage(f)
	line := "  --" + f.Name
	if arg != "" {
		line += " " + arg
	}
	fmt.Fprintln(w, line)
	if def := defaultText(f); def != "" {
		usage += " (default " + def + ")"
	}
	for _, l := range textwrap.Lines(usage, 80-8) {
		fmt.Fprintln(w, "        "+l)
	}
}

// defaultText is the default of f as --help shows it, or "" for a zero default.
func defaultText(f *flag.Flag) string {
	switch f.DefValue {
	case "", "0", "false", "0s":
		return ""
	}
	if g, ok := f.Value.(flag.Getter); ok {
		if _, isString := g.Get().(string); isString {
			return fmt.Sprintf("%q", f.DefValue)
		}
	}
	return f.DefValue
}
