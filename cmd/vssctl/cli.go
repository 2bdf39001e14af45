package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	vssclient "github.com/govss/vss/client"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// Exit codes, one per class of failure.
const (
	exitOK          = 0
	exitUsage       = 1 // bad flags or arguments, unreadable file or key
	exitNotFound    = 2
	exitConflict    = 3
	exitAuth        = 4
	exitInvalid     = 5
	exitUnavailable = 6 // the server failed or could not be reached
)

// defaultServer is where `make run` serves.
const defaultServer = "http://127.0.0.1:8080"

const usage = `vssctl reads and writes the keys of a VSS server.

Usage:
  vssctl [flags] get KEY
  vssctl [flags] put [--version N] [--global-version N] KEY (VALUE | --file PATH)
  vssctl [flags] delete [--version N] KEY
  vssctl [flags] list [--prefix P] [--page-size N] [--page-token T]

Commands:
  get     print the value of KEY, byte for byte (with --json: key, version and value)
  put     write KEY. --version 0 (the default) creates it and fails if it exists,
          --version N updates version N to N+1, --version -1 writes unconditionally.
          --global-version N also checks and bumps the store's global version.
          The value is VALUE, or the contents of --file PATH (- for standard input).
  delete  delete KEY: --version -1 (the default) whatever its version, --version N only
          at version N. Deleting a missing key succeeds.
  list    print "KEY<tab>VERSION" lines, newest created first, and the store's global
          version on standard error. Without --page-size and --page-token it lists every
          page; with either, one page, and the next page token on standard error.

Flags (anywhere on the line):
  --server URL            the server's base URL (env VSSCTL_SERVER; default ` + defaultServer + `)
  --store-id ID           the store (env VSSCTL_STORE_ID; default the empty store id)
  --private-key HEX       a secp256k1 private key (64 hex digits): sign every request with
                          the signature scheme (env VSSCTL_PRIVATE_KEY)
  --private-key-file PATH read the private key from a file (hex, or 32 raw bytes)
  --token JWT             send "Authorization: Bearer JWT" (env VSSCTL_TOKEN)
  --lnurl-auth URL        log in at an LNURL-auth issuer, such as
                          https://vss.example.com/auth/lnurl, with the private key as the
                          linking key, and send the token it issues
  --json                  print responses as protobuf JSON, one line each
  --timeout DURATION      time limit of each attempt (default 30s)
  --retries N             attempts per request, the first included (default 5); retries
                          happen on unavailable, internal and transport errors only
  -h, --help              print this help

Without --private-key, --token or --lnurl-auth, requests carry no credentials (for a
server run with --auth none).

Exit codes:
  0  success
  1  usage error, or a local failure (unreadable file, malformed key)
  2  not found: the key does not exist
  3  conflict: a version did not match; nothing was written
  4  authentication refused
  5  invalid request (for example a key or store id beyond the server's limits)
  6  the server failed or could not be reached (unavailable, internal, timeout)
`

// usageError is a mistake on the command line.
type usageError struct{ error }

// localError is a failure to read a local file or standard input.
type localError struct{ error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// command is a parsed command line.
type command struct {
	name string
	args []string

	server, storeID        string
	privateKey, keyFile    string
	token, lnurlAuth       string
	json                   bool
	timeout                time.Duration
	retries                int
	version, globalVersion int64
	file                   string
	prefix, pageToken      string
	pageSize               int
	set                    map[string]bool // the flags given
	stdin                  io.Reader
	stdout, stderr         io.Writer
	getenv                 func(string) string
}

// commandFlags are the flags each command accepts besides the common ones.
var commandFlags = map[string][]string{
	"get":    nil,
	"put":    {"version", "global-version", "file"},
	"delete": {"version"},
	"list":   {"prefix", "page-size", "page-token"},
}

// commandArgs are the numbers of arguments each command accepts.
var commandArgs = map[string][2]int{"get": {1, 1}, "put": {1, 2}, "delete": {1, 1}, "list": {0, 0}}

// run runs vssctl with the arguments args and returns its exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	c, err := parse(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if err == nil {
		c.stdin, c.stdout, c.stderr = stdin, stdout, stderr
		err = c.run(ctx)
	}
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "vssctl: %v\n", err)
	if errors.As(err, new(usageError)) {
		fmt.Fprintln(stderr, "Run 'vssctl --help' for usage.")
	}
	return exitCode(err)
}

// exitCode classifies an error.
func exitCode(err error) int {
	if errors.As(err, new(usageError)) || errors.As(err, new(localError)) {
		return exitUsage
	}
	switch connect.CodeOf(err) {
	case connect.CodeNotFound:
		return exitNotFound
	case connect.CodeAborted:
		return exitConflict
	case connect.CodeUnauthenticated, connect.CodePermissionDenied:
		return exitAuth
	case connect.CodeInvalidArgument:
		return exitInvalid
	}
	return exitUnavailable
}

// parse reads the command line. Flags may come before, between and after the command
// and its arguments; "--" ends the flags.
func parse(args []string, getenv func(string) string) (*command, error) {
	c := &command{getenv: getenv, set: map[string]bool{}}
	fs := flag.NewFlagSet("vssctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&c.server, "server", "", "")
	fs.StringVar(&c.storeID, "store-id", "", "")
	fs.StringVar(&c.privateKey, "private-key", "", "")
	fs.StringVar(&c.keyFile, "private-key-file", "", "")
	fs.StringVar(&c.token, "token", "", "")
	fs.StringVar(&c.lnurlAuth, "lnurl-auth", "", "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.DurationVar(&c.timeout, "timeout", vssclient.DefaultTimeout, "")
	fs.IntVar(&c.retries, "retries", vssclient.DefaultMaxAttempts, "")
	fs.Int64Var(&c.version, "version", 0, "")
	fs.Int64Var(&c.globalVersion, "global-version", 0, "")
	fs.StringVar(&c.file, "file", "", "")
	fs.StringVar(&c.prefix, "prefix", "", "")
	fs.StringVar(&c.pageToken, "page-token", "", "")
	fs.IntVar(&c.pageSize, "page-size", 0, "")

	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	fs.Visit(func(f *flag.Flag) { c.set[f.Name] = true })

	if len(positional) == 0 {
		return nil, usagef("no command: want get, put, delete or list")
	}
	c.name, c.args = positional[0], positional[1:]
	if c.name == "help" {
		return nil, flag.ErrHelp
	}
	allowed, ok := commandFlags[c.name]
	if !ok {
		return nil, usagef("unknown command %q: want get, put, delete or list", c.name)
	}
	for _, name := range []string{"version", "global-version", "file", "prefix", "page-size", "page-token"} {
		if c.set[name] && !contains(allowed, name) {
			return nil, usagef("%s does not take --%s", c.name, name)
		}
	}
	if n := commandArgs[c.name]; len(c.args) < n[0] || len(c.args) > n[1] {
		return nil, usagef("%s: wrong number of arguments (see vssctl --help)", c.name)
	}
	if c.retries < 1 {
		return nil, usagef("--retries must be at least 1")
	}
	if c.set["page-size"] && (c.pageSize < 1 || c.pageSize > 1<<31-1) {
		return nil, usagef("--page-size must be a positive number")
	}
	if c.name == "delete" && !c.set["version"] {
		c.version = -1
	}
	if !c.set["server"] {
		c.server = getenv("VSSCTL_SERVER")
		if c.server == "" {
			c.server = defaultServer
		}
	}
	if !strings.HasPrefix(c.server, "http://") && !strings.HasPrefix(c.server, "https://") {
		return nil, usagef("--server %q is not an http or https URL", c.server)
	}
	if !c.set["store-id"] {
		c.storeID = getenv("VSSCTL_STORE_ID")
	}
	return c, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// client builds the client with the credentials the flags and environment give.
func (c *command) client() (*vssclient.Client, error) {
	opts := []vssclient.Option{
		vssclient.WithTimeout(c.timeout),
		vssclient.WithRetry(vssclient.RetryPolicy{MaxAttempts: c.retries}),
	}
	key, err := c.key()
	if err != nil {
		return nil, err
	}
	token := c.token
	if !c.set["token"] {
		token = c.getenv("VSSCTL_TOKEN")
	}
	switch {
	case c.lnurlAuth != "":
		if key == nil {
			return nil, usagef("--lnurl-auth needs the linking key: give --private-key, --private-key-file or VSSCTL_PRIVATE_KEY")
		}
		if token != "" {
			return nil, usagef("give either --token or --lnurl-auth, not both")
		}
		auth, err := vssclient.NewLNURLAuth(vssclient.LNURLAuthConfig{URL: c.lnurlAuth, LinkingKey: key})
		if err != nil {
			return nil, usageError{err}
		}
		opts = append(opts, vssclient.WithHeaders(auth))
	case token != "" && key != nil:
		return nil, usagef("give either a token or a private key, not both")
	case token != "":
		opts = append(opts, vssclient.WithHeaders(vssclient.Bearer(token)))
	case key != nil:
		opts = append(opts, vssclient.WithHeaders(vssclient.Signature(key)))
	}
	return vssclient.New(c.server, opts...), nil
}

// key returns the private key the flags or the environment give, or nil.
func (c *command) key() (*secp256k1.PrivateKey, error) {
	if c.privateKey != "" && c.keyFile != "" {
		return nil, usagef("give either --private-key or --private-key-file, not both")
	}
	text, source := c.privateKey, "--private-key"
	switch {
	case c.keyFile != "":
		data, err := os.ReadFile(c.keyFile)
		if err != nil {
			return nil, localError{fmt.Errorf("read the private key: %w", err)}
		}
		if len(data) == 32 && !isHex(data) {
			return parseKey(data, "--private-key-file")
		}
		text, source = string(data), "--private-key-file"
	case text == "":
		text, source = c.getenv("VSSCTL_PRIVATE_KEY"), "VSSCTL_PRIVATE_KEY"
		if text == "" {
			return nil, nil
		}
	}
	raw, err := hex.DecodeString(strings.TrimSpace(text))
	if err != nil || len(raw) != 32 {
		return nil, usagef("%s: want a secp256k1 private key as 64 hex digits", source)
	}
	return parseKey(raw, source)
}

func isHex(b []byte) bool {
	_, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	return err == nil
}

// parseKey checks that raw is a valid secp256k1 private key: not zero, below the order.
func parseKey(raw []byte, source string) (*secp256k1.PrivateKey, error) {
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(raw); overflow || s.IsZero() {
		return nil, usagef("%s: not a valid secp256k1 private key (zero or not below the curve order)", source)
	}
	return secp256k1.NewPrivateKey(&s), nil
}

// run executes the command.
func (c *command) run(ctx context.Context) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	switch c.name {
	case "get":
		return c.get(ctx, cl)
	case "put":
		return c.put(ctx, cl)
	case "delete":
		_, err := cl.DeleteObject(ctx, &vssv1.DeleteObjectRequest{StoreId: c.storeID, KeyValue: &vssv1.KeyValue{Key: c.args[0], Version: c.version}})
		if err == nil && c.json {
			return c.printJSON(&vssv1.DeleteObjectResponse{})
		}
		return err
	default:
		return c.list(ctx, cl)
	}
}

func (c *command) get(ctx context.Context, cl *vssclient.Client) error {
	resp, err := cl.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: c.storeID, Key: c.args[0]})
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	_, err = c.stdout.Write(resp.GetValue().GetValue())
	return err
}

func (c *command) put(ctx context.Context, cl *vssclient.Client) error {
	var value []byte
	switch {
	case len(c.args) == 2 && c.set["file"]:
		return usagef("put: give the value as an argument or with --file, not both")
	case len(c.args) == 2:
		value = []byte(c.args[1])
	case c.file == "-":
		data, err := io.ReadAll(c.stdin)
		if err != nil {
			return localError{fmt.Errorf("read standard input: %w", err)}
		}
		value = data
	case c.file != "":
		data, err := os.ReadFile(c.file)
		if err != nil {
			return localError{err}
		}
		value = data
	default:
		return usagef("put: give the value as an argument or with --file (- for standard input)")
	}
	req := &vssv1.PutObjectRequest{StoreId: c.storeID, TransactionItems: []*vssv1.KeyValue{{Key: c.args[0], Version: c.version, Value: value}}}
	if c.set["global-version"] {
		req.GlobalVersion = &c.globalVersion
	}
	resp, err := cl.PutObjects(ctx, req)
	if err == nil && c.json {
		return c.printJSON(resp)
	}
	return err
}

func (c *command) list(ctx context.Context, cl *vssclient.Client) error {
	req := &vssv1.ListKeyVersionsRequest{StoreId: c.storeID}
	if c.set["prefix"] {
		req.KeyPrefix = &c.prefix
	}
	if c.set["page-size"] {
		size := int32(c.pageSize)
		req.PageSize = &size
	}
	if c.set["page-token"] {
		req.PageToken = &c.pageToken
	}
	var resp *vssv1.ListKeyVersionsResponse
	var err error
	if c.set["page-size"] || c.set["page-token"] {
		resp, err = cl.ListKeyVersions(ctx, req)
	} else {
		resp, err = cl.ListAll(ctx, req)
	}
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	var out bytes.Buffer
	for _, kv := range resp.GetKeyVersions() {
		fmt.Fprintf(&out, "%s\t%d\n", kv.GetKey(), kv.GetVersion())
	}
	if _, err := c.stdout.Write(out.Bytes()); err != nil {
		return err
	}
	if resp.GlobalVersion != nil {
		fmt.Fprintf(c.stderr, "global version: %d\n", resp.GetGlobalVersion())
	}
	if resp.GetNextPageToken() != "" {
		fmt.Fprintf(c.stderr, "next page token: %s\n", resp.GetNextPageToken())
	}
	return nil
}

// printJSON prints m as compact protobuf JSON on one line.
func (c *command) printJSON(m proto.Message) error {
	data, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, data); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = c.stdout.Write(out.Bytes())
	return err
}
