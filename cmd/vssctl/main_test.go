package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/vsstest"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/pgtest"
)

// TestMain lets the test binary act as vssctl itself when VSSCTL_TEST_MAIN is set, so
// that tests can run it as a separate process (exit codes, the README's shell lines),
// and otherwise runs the tests with a PostgreSQL server (migrate's tests move data
// between the embedded store and PostgreSQL).
func TestMain(m *testing.M) {
	if os.Getenv("VSSCTL_TEST_MAIN") == "1" {
		main()
		return
	}
	pgtest.Main(m)
}

// result is what one vssctl run printed and returned.
type result struct {
	out, err string
	code     int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
}

// cli runs vssctl in-process against a server with the environment env.
type cli struct {
	t   *testing.T
	env map[string]string
}

func newCLI(t *testing.T, server string, env ...string) *cli {
	c := &cli{t: t, env: map[string]string{"VSSCTL_SERVER": server}}
	for i := 0; i+1 < len(env); i += 2 {
		c.env[env[i]] = env[i+1]
	}
	return c
}

func (c *cli) runIn(stdin string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, args, func(k string) string { return c.env[k] }, strings.NewReader(stdin), &out, &errOut)
	return result{out.String(), errOut.String(), code}
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	return c.runIn("", args...)
}

// ok runs vssctl, requires success and returns its standard output.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("vssctl %q: %v", args, r)
	}
	return r.out
}

// fails runs vssctl and requires the exit code and a message on standard error.
func (c *cli) fails(code int, message string, args ...string) {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code || !strings.Contains(r.err, message) || r.out != "" {
		c.t.Fatalf("vssctl %q: %v; want exit %d and %q on standard error", args, r, code, message)
	}
}

func newKeyHex(t *testing.T) (string, *secp256k1.PrivateKey) {
	t.Helper()
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(k.Serialize()), k
}

// TestCommands runs each command against a real server with signature authentication.
func TestCommands(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	keyHex, key := newKeyHex(t)
	c := newCLI(t, srv.URL, "VSSCTL_PRIVATE_KEY", keyHex, "VSSCTL_STORE_ID", "wallet")

	if out := c.ok("put", "greeting", "hello"); out != "" {
		t.Fatalf("put printed %q", out)
	}
	if out := c.ok("get", "greeting"); out != "hello" {
		t.Fatalf("get = %q, want the value byte for byte", out)
	}
	if out := c.ok("get", "--json", "greeting"); out != `{"value":{"key":"greeting","version":"1","value":"aGVsbG8="}}`+"\n" {
		t.Fatalf("get --json = %q", out)
	}
	c.fails(exitConflict, "aborted", "put", "greeting", "again") // version 0 creates
	c.fails(exitConflict, "aborted", "put", "--version", "7", "greeting", "again")
	c.ok("put", "--version", "1", "greeting", "hi!")
	c.ok("put", "greeting", "--version=-1", "unconditional") // flags after arguments
	if out := c.ok("get", "greeting", "--json"); !strings.Contains(out, `"version":"1"`) {
		t.Fatalf("after an unconditional put: %q, want version 1", out)
	}

	// Values from a file and from standard input, byte for byte.
	binary := []byte{0, 1, 2, 0xff, '\n', 0xfe}
	path := filepath.Join(t.TempDir(), "value.bin")
	if err := os.WriteFile(path, binary, 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("put", "--file", path, "from-file")
	if out := c.ok("get", "from-file"); out != string(binary) {
		t.Fatalf("get from-file = %q", out)
	}
	if r := c.runIn("piped\x00value", "put", "--file", "-", "from-stdin"); r.code != 0 {
		t.Fatalf("put from standard input: %v", r)
	}
	if out := c.ok("get", "from-stdin"); out != "piped\x00value" {
		t.Fatalf("get from-stdin = %q", out)
	}

	// The global version: checked and bumped on request.
	c.ok("put", "--global-version", "0", "--version", "1", "from-file", "v2")
	c.fails(exitConflict, "aborted", "put", "--global-version", "0", "--version", "2", "from-file", "v3")
	if r := c.run("list"); r.code != 0 || r.out != "from-stdin\t1\nfrom-file\t2\ngreeting\t1\n" || r.err != "global version: 1\n" {
		t.Fatalf("list: %v", r)
	}
	if out := c.ok("list", "--json", "--prefix", "from-"); out != `{"keyVersions":[{"key":"from-stdin","version":"1"},{"key":"from-file","version":"2"}],"globalVersion":"1"}`+"\n" {
		t.Fatalf("list --json --prefix from- = %q", out)
	}

	// Delete: unconditional by default, conditional with --version, idempotent.
	c.ok("delete", "--version", "5", "greeting") // wrong version: nothing happens
	c.ok("get", "greeting")
	c.ok("delete", "greeting")
	c.fails(exitNotFound, "not_found", "get", "greeting")
	if out := c.ok("delete", "greeting", "--json"); out != "{}\n" {
		t.Fatalf("delete of a missing key --json = %q", out)
	}

	// Everything went to the key's user and the store id from the environment.
	cl := vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	got, err := cl.GetObject(context.Background(), &vssv1.GetObjectRequest{StoreId: "wallet", Key: "from-stdin"})
	if err != nil || string(got.GetValue().GetValue()) != "piped\x00value" {
		t.Fatalf("read back with the Go client: %v, %v", got, err)
	}
	// --store-id overrides the environment.
	c.fails(exitNotFound, "no such key", "--store-id", "other", "get", "from-stdin")
}

// TestListPages pages through a store one page at a time and all at once.
func TestListPages(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	keyHex, key := newKeyHex(t)
	cl := vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	var items []*vssv1.KeyValue
	var want []string
	for i := range 130 {
		items = append(items, &vssv1.KeyValue{Key: fmt.Sprintf("k%03d", i), Version: 0})
		want = append([]string{fmt.Sprintf("k%03d\t1", i)}, want...)
	}
	if _, err := cl.PutObjects(context.Background(), &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: items}); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, srv.URL, "VSSCTL_PRIVATE_KEY", keyHex)

	// All pages: more keys than the server's largest page.
	if r := c.run("list", "--store-id", "s"); r.code != 0 || r.out != strings.Join(want, "\n")+"\n" || r.err != "global version: 0\n" {
		t.Fatalf("list: %d lines, stderr %q, exit %d", strings.Count(r.out, "\n"), r.err, r.code)
	}
	// One page at a time, following the tokens printed on standard error.
	var got []string
	token, pages := "", 0
	for {
		args := []string{"list", "--store-id", "s", "--page-size", "50"}
		if token != "" {
			args = append(args, "--page-token", token)
		}
		r := c.run(args...)
		if r.code != 0 {
			t.Fatalf("vssctl %q: %v", args, r)
		}
		pages++
		got = append(got, strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")...)
		if pages == 1 != strings.Contains(r.err, "global version: 0") {
			t.Fatalf("page %d: stderr %q; only the first page has the global version", pages, r.err)
		}
		_, after, found := strings.Cut(r.err, "next page token: ")
		if !found {
			break
		}
		token = strings.TrimSpace(after)
	}
	if pages != 3 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%d pages with %d keys, want 3 pages with %d", pages, len(got), len(want))
	}
	c.fails(exitInvalid, "invalid_argument", "list", "--store-id", "s", "--page-token", "not-issued")
}

// TestAuthOptions authenticates each way vssctl offers: a key in a flag, a file or the
// environment, a bearer token, and LNURL-auth; each reaches the same user.
func TestAuthOptions(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{LNURLAuth: true})
	keyHex, key := newKeyHex(t)
	dir := t.TempDir()
	hexFile, rawFile, badFile := filepath.Join(dir, "key.hex"), filepath.Join(dir, "key.bin"), filepath.Join(dir, "bad")
	for path, data := range map[string][]byte{hexFile: []byte(keyHex + "\n"), rawFile: key.Serialize(), badFile: []byte("not a key")} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	auth, err := vssclient.NewLNURLAuth(vssclient.LNURLAuthConfig{URL: srv.LNURL, LinkingKey: key})
	if err != nil {
		t.Fatal(err)
	}
	token, err := auth.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	c := newCLI(t, srv.URL)
	c.ok("put", "--private-key", keyHex, "k", "v")
	for name, args := range map[string][]string{
		"flag":        {"--private-key", keyHex},
		"hex file":    {"--private-key-file", hexFile},
		"raw file":    {"--private-key-file", rawFile},
		"token":       {"--token", token},
		"lnurl-auth":  {"--lnurl-auth", srv.LNURL, "--private-key", keyHex},
		"environment": nil,
	} {
		c := newCLI(t, srv.URL)
		if name == "environment" {
			c.env["VSSCTL_PRIVATE_KEY"] = keyHex
		}
		if out := c.ok(append(args, "get", "k")...); out != "v" {
			t.Errorf("%s: get = %q", name, out)
		}
	}
	envToken := newCLI(t, srv.URL, "VSSCTL_TOKEN", token)
	if out := envToken.ok("get", "k"); out != "v" {
		t.Errorf("VSSCTL_TOKEN: get = %q", out)
	}

	otherHex, _ := newKeyHex(t)
	c.fails(exitNotFound, "no such key", "--private-key", otherHex, "get", "k") // another user
	c.fails(exitAuth, "unauthenticated", "get", "k")                            // no credentials
	c.fails(exitAuth, "unauthenticated", "--token", "not.a.jwt", "get", "k")
	c.fails(exitAuth, "LNURL-auth", "--lnurl-auth", srv.URL+"/no-such-issuer", "--private-key", keyHex, "get", "k")
	c.fails(exitUsage, "64 hex digits", "--private-key", "abcd", "get", "k")
	c.fails(exitUsage, "not a valid secp256k1 private key", "--private-key", strings.Repeat("00", 32), "get", "k")
	c.fails(exitUsage, "not a valid secp256k1 private key", "--private-key", strings.Repeat("ff", 32), "get", "k")
	c.fails(exitUsage, "--private-key-file: want", "--private-key-file", badFile, "get", "k")
	c.fails(exitUsage, "read the private key", "--private-key-file", filepath.Join(dir, "missing"), "get", "k")
	c.fails(exitUsage, "not both", "--private-key", keyHex, "--private-key-file", hexFile, "get", "k")
	c.fails(exitUsage, "not both", "--private-key", keyHex, "--token", token, "get", "k")
	c.fails(exitUsage, "needs the linking key", "--lnurl-auth", srv.LNURL, "get", "k")
	newCLI(t, srv.URL, "VSSCTL_PRIVATE_KEY", "zz").fails(exitUsage, "VSSCTL_PRIVATE_KEY", "get", "k")
}

// TestExitCodes checks the exit code of each class of failure, and the usage errors.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{NoAuth: true})
	c := newCLI(t, srv.URL)
	c.ok("put", "k", "v")
	for _, tc := range []struct {
		code    int
		message string
		args    []string
	}{
		{exitNotFound, "not_found: no such key", []string{"get", "missing"}},
		{exitConflict, "aborted", []string{"put", "k", "v"}},
		{exitInvalid, "invalid_argument", []string{"--store-id", strings.Repeat("s", 121), "get", "k"}},
		{exitInvalid, "invalid_argument", []string{"get", "global_version", "--server", srv.URL, "--store-id", strings.Repeat("s", 121)}},
		{exitUnavailable, "unavailable", []string{"--server", "http://127.0.0.1:1", "--retries", "1", "get", "k"}},
		{exitUsage, "no command", nil},
		{exitUsage, "unknown command", []string{"fetch", "k"}},
		{exitUsage, "wrong number of arguments", []string{"get"}},
		{exitUsage, "wrong number of arguments", []string{"get", "a", "b"}},
		{exitUsage, "wrong number of arguments", []string{"list", "a"}},
		{exitUsage, "get does not take --version", []string{"get", "--version", "1", "k"}},
		{exitUsage, "list does not take --file", []string{"list", "--file", "x"}},
		{exitUsage, "give the value", []string{"put", "k"}},
		{exitUsage, "not both", []string{"put", "k", "v", "--file", "x"}},
		{exitUsage, "no such file", []string{"put", "k", "--file", filepath.Join(t.TempDir(), "missing")}},
		{exitUsage, "flag provided but not defined", []string{"--no-such-flag", "get", "k"}},
		{exitUsage, "invalid value", []string{"put", "--version", "one", "k", "v"}},
		{exitUsage, "--page-size", []string{"list", "--page-size", "0"}},
		{exitUsage, "--retries", []string{"--retries", "0", "get", "k"}},
		{exitUsage, "not an http", []string{"--server", "127.0.0.1:8080", "get", "k"}},
	} {
		c.fails(tc.code, tc.message, tc.args...)
	}
	// "--" ends the flags: a key may start with a dash.
	c.ok("put", "--", "-dash", "v")
	if out := c.ok("get", "--", "-dash"); out != "v" {
		t.Fatalf("get -- -dash = %q", out)
	}
	for _, help := range [][]string{{"--help"}, {"-h"}, {"help"}, {"get", "--help"}} {
		if r := c.run(help...); r.code != 0 || !strings.Contains(r.out, "Exit codes:") || r.err != "" {
			t.Fatalf("vssctl %q: %v", help, r)
		}
	}
}
