package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/vsstest"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/app"
	"github.com/govss/vss/server"
	"github.com/govss/vss/storage"
)

// startApp runs the complete vss-server in-process with cfg (an in-memory store unless
// cfg names one, no authentication unless cfg says otherwise) and returns its base URL.
func startApp(t *testing.T, cfg app.Config) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	cfg.Listen = "127.0.0.1:0"
	if cfg.DatabaseURL == "" && cfg.DataDir == "" {
		cfg.DatabaseURL = app.MemoryURL
	}
	if cfg.Auth.Schemes == "" {
		cfg.Auth.Schemes = "none"
	}
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Ready = func(a net.Addr) { ready <- a }
	go func() { done <- app.Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case a := <-ready:
		return "http://" + a.String()
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30s")
	}
	return ""
}

// TestLimitExitCodes checks that the server's refusals of a request beyond its limits
// exit with the code of their class: a body over --max-body-bytes is an invalid request
// (5), a quota or a rate limit a refusal (7), and neither is a server failure (6).
func TestLimitExitCodes(t *testing.T) {
	t.Parallel()
	t.Run("body and quota", func(t *testing.T) {
		t.Parallel()
		c := newCLI(t, startApp(t, app.Config{MaxBodyBytes: 64 << 10, Quota: storage.Quota{MaxKeys: 2}}))
		c.fails(exitInvalid, "resource_exhausted", "put", "big", strings.Repeat("x", 100<<10))
		c.ok("put", "a", "1")
		c.ok("put", "b", "2")
		c.fails(exitRefused, "key quota exceeded", "put", "c", "3")
		c.ok("get", "a") // reads still work
	})
	t.Run("rate limit", func(t *testing.T) {
		t.Parallel()
		c := newCLI(t, startApp(t, app.Config{RateLimit: server.RateLimit{Rate: 0.001, Burst: 2}}))
		c.ok("put", "a", "1")
		c.ok("get", "a")
		r := c.run("get", "a")
		if r.code != exitRefused || !strings.Contains(r.err, "rate limited") || !regexp.MustCompile(`retry after \d+ s`).MatchString(r.err) {
			t.Fatalf("over the rate limit: %v; want exit %d, rate limited, retry after", r, exitRefused)
		}
	})
}

// TestVersion prints the version the way vss-server does, with --version and the
// version command; --version stays the key's version for put and delete.
func TestVersion(t *testing.T) {
	t.Parallel()
	c := newCLI(t, vsstest.Start(t, vsstest.Config{NoAuth: true}).URL)
	want := versionString() + "\n"
	if !strings.HasPrefix(want, "vssctl ") || !strings.Contains(want, "(commit ") {
		t.Fatalf("versionString() = %q", want)
	}
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}, {"--json", "--version"}} {
		if r := c.run(args...); r.code != 0 || r.out != want || r.err != "" {
			t.Errorf("vssctl %q: %v, want %q", args, r, want)
		}
	}
	c.ok("put", "k", "v")
	c.ok("put", "--version", "1", "k", "v2")
	c.ok("delete", "--version", "2", "k")
	c.fails(exitNotFound, "no such key", "get", "k")
}

// TestKeygen creates keys in each output form and uses them with the server.
func TestKeygen(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	c := newCLI(t, srv.URL)
	hexKey := regexp.MustCompile(`^[0-9a-f]{64}\n$`)

	r := c.run("keygen")
	pub := regexp.MustCompile(`public key \(the user under the signature scheme\): (0[23][0-9a-f]{64})\n`).FindStringSubmatch(r.err)
	if r.code != 0 || !hexKey.MatchString(r.out) || pub == nil {
		t.Fatalf("keygen: %v", r)
	}
	// The key works as --private-key, and the server's user is its public key.
	priv := strings.TrimSpace(r.out)
	c.ok("--private-key", priv, "put", "k", "v")
	if out := c.ok("--private-key", priv, "whoami"); out != pub[1]+"\n" {
		t.Fatalf("whoami with the new key = %q, want %s", out, pub[1])
	}
	raw, _ := hex.DecodeString(priv)
	if got := hex.EncodeToString(secp256k1.PrivKeyFromBytes(raw).PubKey().SerializeCompressed()); got != pub[1] {
		t.Fatalf("the printed public key %s is not the key's (%s)", pub[1], got)
	}

	var keys struct{ PrivateKey, PublicKey string }
	if err := json.Unmarshal([]byte(c.ok("keygen", "--json")), &keys); err != nil || !hexKey.MatchString(keys.PrivateKey+"\n") || len(keys.PublicKey) != 66 || keys.PrivateKey == priv {
		t.Fatalf("keygen --json: %+v, %v", keys, err)
	}

	// --file: a new file of mode 0600 that --private-key-file reads, never overwritten.
	path := filepath.Join(t.TempDir(), "wallet.key")
	out := c.ok("keygen", "--file", path)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	if got := c.ok("--private-key-file", path, "whoami"); got != out {
		t.Fatalf("whoami with --private-key-file = %q, keygen printed %q", got, out)
	}
	before, _ := os.ReadFile(path)
	c.fails(exitUsage, "file exists", "keygen", "--file", path)
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("keygen --file overwrote an existing file")
	}
	c.fails(exitUsage, "keygen does not take --server", "keygen", "--server", srv.URL)
}

// TestWhoami prints the user each kind of credentials acts as, after the server
// accepted them.
func TestWhoami(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{LNURLAuth: true})
	keyHex, key := newKeyHex(t)
	pub := hex.EncodeToString(key.PubKey().SerializeCompressed())
	auth, err := vssclient.NewLNURLAuth(vssclient.LNURLAuthConfig{URL: srv.LNURL, LinkingKey: key})
	if err != nil {
		t.Fatal(err)
	}
	token, err := auth.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, srv.URL)
	for _, tc := range []struct {
		scheme string
		args   []string
	}{
		{"signature", []string{"--private-key", keyHex}},
		{"jwt", []string{"--token", token}},
		{"lnurl-auth", []string{"--lnurl-auth", srv.LNURL, "--private-key", keyHex}},
	} {
		r := c.run(append(tc.args, "whoami")...)
		if r.code != 0 || r.out != pub+"\n" || !strings.Contains(r.err, "scheme "+tc.scheme) {
			t.Errorf("%s: %v, want %s", tc.scheme, r, pub)
		}
		var got struct{ User, Scheme string }
		if err := json.Unmarshal([]byte(c.ok(append(tc.args, "whoami", "--json")...)), &got); err != nil || got.User != pub || got.Scheme != tc.scheme {
			t.Errorf("%s --json: %+v, %v", tc.scheme, got, err)
		}
	}
	// The user is the one the server stores data under: what one scheme writes, the
	// others read.
	c.ok("--token", token, "put", "k", "v")
	if out := c.ok("--private-key", keyHex, "get", "k"); out != "v" {
		t.Fatalf("get with the key = %q", out)
	}
	c.fails(exitAuth, "unauthenticated", "whoami")
	c.fails(exitAuth, "unauthenticated", "--token", "not.a.jwt", "whoami")

	// Without credentials, on a server without authentication, the user is the one that
	// server gives every request.
	open := newCLI(t, vsstest.Start(t, vsstest.Config{NoAuth: true}).URL)
	for _, args := range [][]string{nil, {"--private-key", keyHex}, {"--token", token}} {
		if r := open.run(append(args, "whoami")...); r.code != 0 || r.out != server.NoAuthUser+"\n" || !strings.Contains(r.err, "scheme none") {
			t.Errorf("whoami %q on a server without authentication: %v, want %s", args, r, server.NoAuthUser)
		}
	}
}

// TestCommandHelp prints each command's help on standard output: its synopsis and
// exactly the flags it accepts.
func TestCommandHelp(t *testing.T) {
	t.Parallel()
	c := newCLI(t, defaultServer)
	for _, doc := range commandDocs {
		r := c.run(doc.name, "--help")
		if r.code != 0 || r.err != "" || !strings.HasPrefix(r.out, "Usage: vssctl [flags] "+doc.name) {
			t.Fatalf("%s --help: %v", doc.name, r)
		}
		if other := c.run("help", doc.name); other.out != r.out {
			t.Errorf("help %s differs from %s --help", doc.name, doc.name)
		}
		for _, f := range flagDocs {
			listed := strings.Contains(r.out, "\n  --"+f.name+" ") || strings.Contains(r.out, "\n  --"+f.name+"\n")
			value := "1"
			switch f.arg {
			case "DURATION":
				value = "1s"
			case "BYTES":
				value = "4MiB"
			}
			_, err := parse([]string{doc.name, "--" + f.name + "=" + value, "a", "b"}, func(string) string { return "" })
			accepted := err == nil || !strings.Contains(err.Error(), "does not take")
			if listed != accepted {
				t.Errorf("%s --help lists --%s: %v; %s accepts it: %v (%v)", doc.name, f.name, listed, doc.name, accepted, err)
			}
		}
	}
	if r := c.run("--help"); r.code != 0 || !strings.Contains(r.out, "  keygen ") || !strings.Contains(r.out, "7  refused by the user's quota") {
		t.Fatalf("--help: %v", r)
	}
	c.fails(exitUsage, "Run 'vssctl put --help'", "put")
}

// TestBashCompletion loads the bash completion script into a real bash and completes
// commands, flags, file names and shells.
func TestBashCompletion(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "vssctl.bash")
	if err := os.WriteFile(script, []byte(newCLI(t, defaultServer).ok("completion", "bash")), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "value.bin"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ line, want string }{
		{"vssctl pu", "put"},
		{"vssctl ke", "keygen"},
		{"vssctl put --gl", "--global-version"},
		{"vssctl --store-id s delete --pre", "--prefix"},
		{"vssctl list --pa", "--page-size --page-token"},
		{"vssctl get --ver", ""}, // get takes no --version
		{"vssctl --server http://x --ver", "--version"},
		{"vssctl put --file " + dir + "/val", dir + "/value.bin"},
		{"vssctl completion z", "zsh"},
	} {
		words := strings.Fields(tc.line)
		bash := fmt.Sprintf(`source %q; COMP_WORDS=(%s); COMP_CWORD=%d; _vssctl; echo "${COMPREPLY[*]}"`, script, strings.Join(words, " "), len(words)-1)
		out, err := exec.Command("bash", "-c", bash).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("completing %q: %q, %v; want %q", tc.line, out, err, tc.want)
		}
	}
	// The other shells' scripts name every command.
	for _, shell := range []string{"zsh", "fish"} {
		out := newCLI(t, defaultServer).ok("completion", shell)
		for _, name := range commandNames() {
			if !strings.Contains(out, name) {
				t.Errorf("%s completion lacks %s", shell, name)
			}
		}
	}
	newCLI(t, defaultServer).fails(exitUsage, "want bash, zsh or fish", "completion", "tcsh")
}

// TestProgress shows progress on standard error for long operations when it is a
// terminal, and nothing otherwise.
func TestProgress(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{NoAuth: true})
	cl := vssclient.New(srv.URL)
	var items []*vssv1.KeyValue
	for i := range 250 {
		items = append(items, &vssv1.KeyValue{Key: fmt.Sprintf("k%03d", i)})
	}
	if _, err := cl.PutObjects(context.Background(), &vssv1.PutObjectRequest{TransactionItems: items}); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte{1}, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string { return map[string]string{"VSSCTL_SERVER": srv.URL}[k] }
	runTerm := func(terminal bool, args ...string) result {
		var out, errOut bytes.Buffer
		code := runWith(context.Background(), args, env, strings.NewReader(""), &out, &errOut, terminals{stderr: terminal})
		return result{out.String(), errOut.String(), code}
	}
	for _, tc := range []struct {
		args, argsWithout []string
		progress, stderr  string
	}{
		{[]string{"put", "--file", big, "big"}, []string{"put", "--file", big, "big2"}, "sent ", ""},
		{[]string{"get", "big"}, nil, "received ", ""},
		{[]string{"list"}, nil, "listed 100 keys", "global version: 0\n"},
	} {
		with := runTerm(true, tc.args...)
		if tc.argsWithout == nil {
			tc.argsWithout = tc.args
		}
		without := runTerm(false, tc.argsWithout...)
		if with.code != 0 || !strings.Contains(with.err, tc.progress) || !strings.HasSuffix(with.err, "\r\033[K"+tc.stderr) {
			t.Errorf("%q on a terminal: exit %d, stderr %q; want progress %q, then cleared", tc.args, with.code, with.err, tc.progress)
		}
		if without.code != 0 || without.err != tc.stderr {
			t.Errorf("%q not on a terminal: %v; want stderr %q", tc.argsWithout, without, tc.stderr)
		}
		if tc.args[0] != "put" && with.out != without.out {
			t.Errorf("%q: the output differs with progress", tc.args)
		}
	}
}

// TestDeletePrefix deletes every key with a prefix, in requests of at most 1000 items.
func TestDeletePrefix(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{NoAuth: true})
	cl := vssclient.New(srv.URL)
	for batch := range 3 {
		var items []*vssv1.KeyValue
		for i := range 500 {
			items = append(items, &vssv1.KeyValue{Key: fmt.Sprintf("a/%d-%03d", batch, i)})
		}
		items = append(items, &vssv1.KeyValue{Key: fmt.Sprintf("b/%d", batch)})
		if _, err := cl.PutObjects(context.Background(), &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: items}); err != nil {
			t.Fatal(err)
		}
	}
	c := newCLI(t, srv.URL, "VSSCTL_STORE_ID", "s")
	if r := c.run("delete", "--prefix", "a/"); r.code != 0 || r.err != "deleted 1500 keys\n" || r.out != "" {
		t.Fatalf("delete --prefix a/: %v", r)
	}
	if out := c.ok("list"); out != "b/2\t1\nb/1\t1\nb/0\t1\n" {
		t.Fatalf("left after deleting a/: %q", out)
	}
	if out := c.ok("delete", "--prefix", "", "--json"); out != `{"deleted":3}`+"\n" {
		t.Fatalf("delete --prefix '' --json = %q", out)
	}
	c.fails(exitUsage, "either KEY or --prefix", "delete", "--prefix", "b", "k")
	c.fails(exitUsage, "either KEY or --prefix", "delete")
	c.fails(exitUsage, "does not take --version", "delete", "--prefix", "b", "--version", "1")
}
