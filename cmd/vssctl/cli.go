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
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/encrypted"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/buildinfo"
)

// Exit codes, one per class of failure (see exitCodesHelp).
const (
	exitOK           = 0
	exitUsage        = 1 // bad flags or arguments, unreadable file or key
	exitNotFound     = 2
	exitConflict     = 3
	exitAuth         = 4
	exitInvalid      = 5 // invalid request, a body over the server's limit included
	exitUnavailable  = 6 // the server failed or could not be reached
	exitRefused      = 7 // the user's quota or rate limit
	exitPrecondition = 8 // a lease held by another or no longer held; a cursor to re-list from
	exitVerification = 9 // a value or key read with a seed did not verify
)

// exitError is a failure whose exit code is known where it happens (a bad dump, a store
// that is not empty, a move whose result does not match): exitCode returns code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// usageError is a mistake on the command line.
type usageError struct{ error }

// localError is a failure to read a local file or standard input.
type localError struct{ error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// helpRequest is what parse returns for --help or vssctl help: the help of command, or
// vssctl's when it is empty.
type helpRequest struct{ command string }

func (helpRequest) Error() string { return "help requested" }

// versionRequest is what parse returns for vssctl --version.
type versionRequest struct{}

func (versionRequest) Error() string { return "version requested" }

// command is a parsed command line.
type command struct {
	doc  commandDoc
	name string
	args []string

	server, storeID string
	// storeIDs are the values of every --store-id, in order (storeID is the last).
	storeIDs []string
	// auth are the credentials of the server (--private-key and its neighbours); toAuth
	// those of migrate's target (--to-private-key and its neighbours).
	auth, toAuth           credentials
	json                   bool
	timeout                time.Duration
	retries                int
	version, globalVersion int64
	file                   string
	prefix, pageToken      string
	pageSize               int
	deviceID, cursor       string
	values                 bool
	count                  int
	ttl                    time.Duration
	holder, leaseName      string
	leaseToken             int64
	seedFile, vssSeedFile  string
	// seed is what --seed-file or --vss-seed-file give; nil without them.
	seed *seed
	// The flags of the commands that move data (transfer.go) and delete it (erase.go).
	out, from, to                     string
	chunkSize                         byteSize
	abort, allowNewVersions, noVerify bool
	yes, dryRun                       bool

	set            map[string]bool // the flags given
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// progress shows the progress of long operations; it is silent unless standard error
	// is a terminal.
	progress *progress
	// interactive is true when standard input is a terminal, so that a command may ask
	// for a confirmation.
	interactive bool
}

// terminals tells which of the standard streams are terminals.
type terminals struct {
	// stdin is a terminal: commands may ask questions.
	stdin bool
	// stderr is a terminal: progress is shown.
	stderr bool
}

// run runs vssctl with the arguments args and returns its exit code. Progress is shown
// on stderr when it is a terminal.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWith(ctx, args, getenv, stdin, stdout, stderr, terminals{stdin: isTerminal(stdin), stderr: isTerminal(stderr)})
}

// runWith is run, with progress shown on stderr and questions asked on stdin as term
// says.
func runWith(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer, term terminals) int {
	c, err := parse(args, getenv)
	var help helpRequest
	switch {
	case errors.As(err, &help):
		if doc, ok := lookupCommand(help.command); ok {
			writeCommandUsage(stdout, doc)
		} else {
			writeUsage(stdout)
		}
		return exitOK
	case errors.As(err, new(versionRequest)):
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case err == nil:
		c.stdin, c.stdout, c.stderr = stdin, stdout, stderr
		c.progress = newProgress(stderr, term.stderr)
		c.interactive = term.stdin
		err = c.run(ctx)
		c.progress.done()
	}
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "vssctl: %v\n", err)
	if errors.As(err, new(usageError)) {
		if c != nil && c.name != "" {
			fmt.Fprintf(stderr, "Run 'vssctl %s --help' for usage.\n", c.name)
		} else {
			fmt.Fprintln(stderr, "Run 'vssctl --help' for usage.")
		}
	}
	return exitCode(err)
}

// exitCode classifies an error.
func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.As(err, new(usageError)) || errors.As(err, new(localError)) {
		return exitUsage
	}
	if _, ok := encrypted.IsVerification(err); ok {
		return exitVerification
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
	case connect.CodeFailedPrecondition:
		if vssclient.FeedReason(err) != vssv1.FeedErrorReason_FEED_ERROR_REASON_UNSPECIFIED {
			return exitPrecondition
		}
	case connect.CodeResourceExhausted:
		// A quota or rate-limit refusal carries the VSS ErrorResponse (see vss-server's
		// README, Quotas and rate limits); a body or message over the server's size limit,
		// refused before any VSS rule ran, does not: the request itself is invalid.
		if hasErrorResponse(err) {
			return exitRefused
		}
		return exitInvalid
	}
	return exitUnavailable
}

// hasErrorResponse reports whether err carries the VSS ErrorResponse the service attaches
// to the errors it reports.
func hasErrorResponse(err error) bool {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return false
	}
	for _, d := range ce.Details() {
		if msg, err := d.Value(); err == nil {
			if _, ok := msg.(*vssv1.ErrorResponse); ok {
				return true
			}
		}
	}
	return false
}

// describe adds to a server's refusal what the user can do about it.
func describe(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) && exitCode(err) == exitRefused {
		if after := ce.Meta().Get("Retry-After"); after != "" {
			return fmt.Errorf("%w (retry after %s s)", err, after)
		}
	}
	return err
}

// parse reads the command line. Flags may come before, between and after the command
// and its arguments; "--" ends the flags.
func parse(args []string, getenv func(string) string) (*command, error) {
	c := &command{getenv: getenv, set: map[string]bool{}}
	fs := flag.NewFlagSet("vssctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&c.server, "server", "", "")
	fs.Var((*stringList)(&c.storeIDs), "store-id", "")
	c.auth = credentials{flag: "", env: "VSSCTL_"}
	c.toAuth = credentials{flag: "to-", env: "VSSCTL_TO_"}
	for _, cr := range []*credentials{&c.auth, &c.toAuth} {
		fs.StringVar(&cr.privateKey, cr.flag+"private-key", "", "")
		fs.StringVar(&cr.keyFile, cr.flag+"private-key-file", "", "")
		fs.StringVar(&cr.token, cr.flag+"token", "", "")
		fs.StringVar(&cr.lnurlAuth, cr.flag+"lnurl-auth", "", "")
	}
	fs.StringVar(&c.out, "out", "", "")
	fs.StringVar(&c.from, "from", "", "")
	fs.StringVar(&c.to, "to", "", "")
	c.chunkSize = defaultChunkSize
	fs.Var(&c.chunkSize, "chunk-size", "")
	fs.BoolVar(&c.abort, "abort", false, "")
	fs.BoolVar(&c.allowNewVersions, "allow-new-versions", false, "")
	fs.BoolVar(&c.noVerify, "no-verify", false, "")
	fs.BoolVar(&c.yes, "yes", false, "")
	fs.BoolVar(&c.dryRun, "dry-run", false, "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.DurationVar(&c.timeout, "timeout", vssclient.DefaultTimeout, "")
	fs.IntVar(&c.retries, "retries", vssclient.DefaultMaxAttempts, "")
	fs.Int64Var(&c.version, "version", 0, "")
	fs.Int64Var(&c.globalVersion, "global-version", 0, "")
	fs.StringVar(&c.file, "file", "", "")
	fs.StringVar(&c.prefix, "prefix", "", "")
	fs.StringVar(&c.pageToken, "page-token", "", "")
	fs.IntVar(&c.pageSize, "page-size", 0, "")
	fs.StringVar(&c.deviceID, "device-id", "", "")
	fs.StringVar(&c.cursor, "cursor", "", "")
	fs.BoolVar(&c.values, "values", false, "")
	fs.IntVar(&c.count, "count", 0, "")
	fs.DurationVar(&c.ttl, "ttl", defaultLeaseTTL, "")
	fs.StringVar(&c.holder, "holder", "", "")
	fs.StringVar(&c.leaseName, "lease", "", "")
	fs.Int64Var(&c.leaseToken, "lease-token", 0, "")
	fs.StringVar(&c.seedFile, "seed-file", "", "")
	fs.StringVar(&c.vssSeedFile, "vss-seed-file", "", "")
	var help bool
	fs.BoolVar(&help, "help", false, "")
	fs.BoolVar(&help, "h", false, "")

	// --version is also put's and delete's flag for a key's version: alone, with no
	// command on the line, it asks for vssctl's version.
	if buildinfo.WantsVersion(args) && !slices.ContainsFunc(args, func(a string) bool { _, ok := lookupCommand(a); return ok }) {
		return nil, versionRequest{}
	}

	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if help {
				break
			}
			return c, usageError{err}
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

	if len(positional) > 0 && positional[0] == "help" {
		if len(positional) > 1 {
			return nil, helpRequest{positional[1]}
		}
		return nil, helpRequest{}
	}
	if help {
		if len(positional) > 0 {
			return nil, helpRequest{positional[0]}
		}
		return nil, helpRequest{}
	}
	if len(positional) == 0 {
		return c, usagef("no command: want one of %s", strings.Join(commandNames(), ", "))
	}
	c.name, c.args = positional[0], positional[1:]
	doc, ok := lookupCommand(c.name)
	if !ok {
		name := c.name
		c.name = ""
		return c, usagef("unknown command %q: want one of %s", name, strings.Join(commandNames(), ", "))
	}
	c.doc = doc
	allowed := flagsOf(doc)
	for name := range c.set {
		if !slices.Contains(allowed, name) {
			return c, usagef("%s does not take --%s", c.name, name)
		}
	}
	if len(c.args) < doc.minArgs || len(c.args) > doc.maxArgs {
		return c, usagef("%s: wrong number of arguments (see vssctl %s --help)", c.name, c.name)
	}
	if c.name == "delete" && (len(c.args) == 1) == c.set["prefix"] {
		return c, usagef("delete: give either KEY or --prefix P")
	}
	if c.name == "delete" && c.set["prefix"] && c.set["version"] {
		return c, usagef("delete --prefix deletes each key at the version listed: it does not take --version")
	}
	if c.retries < 1 {
		return c, usagef("--retries must be at least 1")
	}
	if c.set["count"] && c.count < 1 {
		return c, usagef("--count must be a positive number")
	}
	if c.set["page-size"] && (c.pageSize < 1 || c.pageSize > 1<<31-1) {
		return c, usagef("--page-size must be a positive number")
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
	if doc.remote && !isHTTPURL(c.server) {
		return c, usagef("--server %q is not an http or https URL", c.server)
	}
	if c.name == "migrate" {
		if err := c.checkMigrateURLs(); err != nil {
			return c, err
		}
	}
	if c.set["store-id"] {
		c.storeID = c.storeIDs[len(c.storeIDs)-1]
	} else {
		c.storeID = getenv("VSSCTL_STORE_ID")
	}
	if !c.set["device-id"] {
		c.deviceID = getenv("VSSCTL_DEVICE_ID")
	}
	return c, nil
}

// isHTTPURL reports whether u is an http or https URL.
func isHTTPURL(u string) bool {
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")
}

// stringList is a flag that may be repeated: each value is appended.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

// Set appends a value.
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// identity is who a client's credentials make it on the server: the scheme and how to
// learn the user (see whoami).
type identity struct {
	scheme string
	user   func(ctx context.Context) (string, error)
}

// noAuthUser is the user of a server run with --auth none (server.NoAuthUser).
const noAuthUser = "unauthenticated"

// credentials are the authentication flags of one side of a command: the server's
// (--private-key, --private-key-file, --token, --lnurl-auth, for every command and for
// migrate's source), or migrate's target's (the same flags with the prefix to-).
type credentials struct {
	// flag is the prefix of the flags' names, env that of their environment variables.
	flag, env                             string
	privateKey, keyFile, token, lnurlAuth string
}

// endpoint is a server a command talks to, with the credentials it sends there.
type endpoint struct {
	url string
	// headers authenticate every request; nil sends no credentials.
	headers vssclient.HeaderProvider
	id      identity
	// key is the private key the credentials sign or log in with, if any.
	key *secp256k1.PrivateKey
}

// client builds the client of --server with the credentials the flags and environment
// give, and says which identity they carry.
func (c *command) client() (*vssclient.Client, identity, error) {
	var fallback *secp256k1.PrivateKey
	if c.seed != nil {
		fallback = c.seed.signing // LDK Node's signing key of the wallet seed
	}
	e, err := c.endpoint(c.server, c.auth, fallback)
	if err != nil {
		return nil, e.id, err
	}
	return c.connectClient(e, &progressHTTP{next: http.DefaultClient, p: c.progress}), e.id, nil
}

// connectClient returns a client of e's Connect API that sends its requests through hc.
func (c *command) connectClient(e endpoint, hc connect.HTTPClient) *vssclient.Client {
	opts := []vssclient.Option{
		vssclient.WithTimeout(c.attemptTimeout()),
		vssclient.WithRetry(vssclient.RetryPolicy{MaxAttempts: c.retries}),
		vssclient.WithHTTPClient(hc),
	}
	if c.deviceID != "" {
		opts = append(opts, vssclient.WithDeviceID(c.deviceID))
	}
	if e.headers != nil {
		opts = append(opts, vssclient.WithHeaders(e.headers))
	}
	return vssclient.New(e.url, opts...)
}

// transferTimeout bounds each attempt of export's, import's and migrate's requests
// without --timeout: a chunk of 4 MiB takes half a minute over an uplink of 1 Mbit/s.
const transferTimeout = 5 * time.Minute

// attemptTimeout is the time limit of each attempt of a request: --timeout, or for the
// commands that move data, transferTimeout.
func (c *command) attemptTimeout() time.Duration {
	switch {
	case c.set["timeout"]:
		return c.timeout
	case c.name == "export" || c.name == "import" || c.name == "migrate":
		return transferTimeout
	}
	return c.timeout
}

// endpoint returns the server at url with the credentials cr gives; fallback, if not
// nil, is the key to sign with when cr gives no credentials at all.
func (c *command) endpoint(url string, cr credentials, fallback *secp256k1.PrivateKey) (endpoint, error) {
	e := endpoint{url: url, id: identity{scheme: "none", user: func(context.Context) (string, error) { return noAuthUser, nil }}}
	key, err := c.key(cr)
	if err != nil {
		return e, err
	}
	token := cr.token
	if !c.set[cr.flag+"token"] {
		token = c.getenv(cr.env + "TOKEN")
	}
	if key == nil && token == "" && cr.lnurlAuth == "" {
		key = fallback
	}
	e.key = key
	switch {
	case cr.lnurlAuth != "":
		if key == nil {
			return e, usagef("--%slnurl-auth needs the linking key: give --%sprivate-key, --%sprivate-key-file or %sPRIVATE_KEY", cr.flag, cr.flag, cr.flag, cr.env)
		}
		if token != "" {
			return e, usagef("give either --%stoken or --%slnurl-auth, not both", cr.flag, cr.flag)
		}
		auth, err := vssclient.NewLNURLAuth(vssclient.LNURLAuthConfig{URL: cr.lnurlAuth, LinkingKey: key})
		if err != nil {
			return e, usageError{err}
		}
		e.headers = auth
		e.id = identity{scheme: "lnurl-auth", user: func(ctx context.Context) (string, error) {
			token, err := auth.Token(ctx)
			if err != nil {
				return "", err
			}
			return tokenSubject(token)
		}}
	case token != "" && key != nil:
		return e, usagef("give either a token or a private key, not both")
	case token != "":
		e.headers = vssclient.Bearer(token)
		e.id = identity{scheme: "jwt", user: func(context.Context) (string, error) { return tokenSubject(token) }}
	case key != nil:
		e.headers = vssclient.Signature(key)
		user := hex.EncodeToString(key.PubKey().SerializeCompressed())
		e.id = identity{scheme: "signature", user: func(context.Context) (string, error) { return user, nil }}
	}
	return e, nil
}

// tokenSubject returns the sub claim of a JWT, the user a server that accepts the token
// sees. The signature is not checked: the server checks it.
func tokenSubject(token string) (string, error) {
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil {
		return "", fmt.Errorf("read the token's claims: %w", err)
	}
	if claims.Subject == "" {
		return "", errors.New("the token has no sub claim")
	}
	return claims.Subject, nil
}

// key returns the private key that cr's flags or environment give, or nil.
func (c *command) key(cr credentials) (*secp256k1.PrivateKey, error) {
	keyFlag, fileFlag, envVar := "--"+cr.flag+"private-key", "--"+cr.flag+"private-key-file", cr.env+"PRIVATE_KEY"
	if cr.privateKey != "" && cr.keyFile != "" {
		return nil, usagef("give either %s or %s, not both", keyFlag, fileFlag)
	}
	text, source := cr.privateKey, keyFlag
	switch {
	case cr.keyFile != "":
		data, err := os.ReadFile(cr.keyFile)
		if err != nil {
			return nil, localError{fmt.Errorf("read the private key: %w", err)}
		}
		if len(data) == 32 && !isHex(data) {
			return parseKey(data, fileFlag)
		}
		text, source = string(data), fileFlag
	case text == "":
		text, source = c.getenv(envVar), envVar
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
func (c *command) run(ctx context.Context) (err error) {
	switch c.name {
	case "keygen":
		return c.keygen()
	case "completion":
		return writeCompletion(c.stdout, c.args[0])
	case "version":
		_, err := fmt.Fprintln(c.stdout, versionString())
		return err
	}
	switch c.name {
	case "export", "import":
		e, err := c.endpoint(c.server, c.auth, nil)
		if err != nil {
			return err
		}
		if c.name == "export" {
			return describe(c.exportDump(ctx, e))
		}
		return describe(c.importDump(ctx, e))
	case "migrate":
		return describe(c.migrate(ctx))
	}
	if c.seed, err = c.loadSeed(); err != nil {
		return err
	}
	cl, id, err := c.client()
	if err != nil {
		return err
	}
	switch c.name {
	case "ldk":
		err = c.ldk(ctx, cl)
	case "get":
		err = c.get(ctx, cl)
	case "put":
		err = c.put(ctx, cl)
	case "delete":
		err = c.delete(ctx, cl)
	case "whoami":
		err = c.whoami(ctx, cl, id)
	case "cursor":
		err = c.printCursor(ctx, cl)
	case "watch":
		err = c.watch(ctx, cl)
	case "lease":
		err = c.lease(ctx, cl)
	case "delete-store":
		err = c.deleteStore(ctx, cl)
	case "delete-all":
		err = c.deleteAll(ctx, cl)
	default:
		err = c.list(ctx, cl)
	}
	return describe(err)
}

func (c *command) get(ctx context.Context, cl *vssclient.Client) error {
	if c.seed != nil {
		return c.getEncrypted(ctx, cl)
	}
	resp, err := cl.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: c.storeID, Key: c.args[0]})
	if err != nil {
		return err
	}
	c.progress.done()
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
	if err := c.checkFence(); err != nil {
		return err
	}
	if c.seed != nil {
		return c.putEncrypted(ctx, cl, value)
	}
	resp, err := cl.Service().PutObjects(ctx, fenced(c, req))
	if err == nil && c.json {
		c.progress.done()
		return c.printJSON(resp.Msg)
	}
	return err
}

// delete deletes one key, or with --prefix every key that starts with the prefix.
func (c *command) delete(ctx context.Context, cl *vssclient.Client) error {
	if err := c.checkFence(); err != nil {
		return err
	}
	if c.seed != nil {
		return c.deleteEncrypted(ctx, cl)
	}
	if !c.set["prefix"] {
		_, err := cl.Service().DeleteObject(ctx, fenced(c, &vssv1.DeleteObjectRequest{StoreId: c.storeID, KeyValue: &vssv1.KeyValue{Key: c.args[0], Version: c.version}}))
		if err == nil && c.json {
			return c.printJSON(&vssv1.DeleteObjectResponse{})
		}
		return err
	}
	listed, err := c.listAll(ctx, cl, &vssv1.ListKeyVersionsRequest{StoreId: c.storeID, KeyPrefix: &c.prefix})
	if err != nil {
		return err
	}
	keys := listed.GetKeyVersions()
	deleted := 0
	for len(keys) > 0 {
		batch := keys[:min(len(keys), maxItemsPerRequest)]
		keys = keys[len(batch):]
		if _, err := cl.Service().PutObjects(ctx, fenced(c, &vssv1.PutObjectRequest{StoreId: c.storeID, DeleteItems: batch})); err != nil {
			return fmt.Errorf("after deleting %d of %d keys: %w", deleted, len(listed.GetKeyVersions()), err)
		}
		deleted += len(batch)
		c.progress.show("deleted %d of %d keys", deleted, len(listed.GetKeyVersions()))
	}
	c.progress.done()
	if c.json {
		return c.printValue(map[string]int{"deleted": deleted})
	}
	_, err = fmt.Fprintf(c.stderr, "deleted %d keys\n", deleted)
	return err
}

// maxItemsPerRequest is the most items one PutObjects may carry.
const maxItemsPerRequest = 1000

func (c *command) list(ctx context.Context, cl *vssclient.Client) error {
	if c.seed != nil {
		kvs, next, err := c.listEncrypted(ctx, cl)
		if err != nil {
			return err
		}
		c.progress.done()
		if err := c.printKeyVersions(kvs); err != nil {
			return err
		}
		if next != "" {
			fmt.Fprintf(c.stderr, "next page token: %s\n", next)
		}
		return nil
	}
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
		resp, err = c.listAll(ctx, cl, req)
	}
	if err != nil {
		return err
	}
	c.progress.done()
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

// listAll lists every page from req on with vssclient's ListAll, and shows how many
// keys it has listed so far.
func (c *command) listAll(ctx context.Context, cl *vssclient.Client, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error) {
	return cl.ListAllProgress(ctx, req, func(listed int) { c.progress.show("listed %d keys", listed) })
}

// whoami checks the credentials with the server and prints the user they act as.
func (c *command) whoami(ctx context.Context, cl *vssclient.Client, id identity) error {
	// Any authenticated call checks the credentials; reading the global version changes
	// nothing and works in every store.
	if _, err := cl.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: c.storeID, Key: globalVersionKey}); err != nil {
		return err
	}
	if id.scheme != "none" {
		// A server that accepts requests without credentials (--auth none) gives every
		// request its one user, whatever credentials it carries.
		anonymous := vssclient.New(c.server, vssclient.WithTimeout(c.timeout), vssclient.WithRetry(vssclient.RetryPolicy{MaxAttempts: c.retries}))
		_, err := anonymous.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: c.storeID, Key: globalVersionKey})
		switch {
		case err == nil:
			id = identity{scheme: "none", user: func(context.Context) (string, error) { return noAuthUser, nil }}
		case !vssclient.IsUnauthenticated(err):
			return err
		}
	}
	user, err := id.user(ctx)
	if err != nil {
		return localError{err}
	}
	if c.json {
		return c.printValue(map[string]string{"user": user, "scheme": id.scheme})
	}
	fmt.Fprintf(c.stderr, "scheme %s, accepted by the server; the user as the server derives it:\n", id.scheme)
	_, err = fmt.Fprintln(c.stdout, user)
	return err
}

// globalVersionKey is the reserved key whose GetObject reads the store's global version.
const globalVersionKey = "global_version"

// keygen prints a new private key and its public key.
func (c *command) keygen() error {
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		return localError{err}
	}
	priv := hex.EncodeToString(key.Serialize())
	pub := hex.EncodeToString(key.PubKey().SerializeCompressed())
	if c.file != "" {
		f, err := os.OpenFile(c.file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return localError{fmt.Errorf("write the private key: %w", err)}
		}
		if _, err := fmt.Fprintln(f, priv); err != nil {
			f.Close()
			return localError{fmt.Errorf("write the private key: %w", err)}
		}
		if err := f.Close(); err != nil {
			return localError{fmt.Errorf("write the private key: %w", err)}
		}
		if c.json {
			return c.printValue(map[string]string{"publicKey": pub, "privateKeyFile": c.file})
		}
		_, err = fmt.Fprintln(c.stdout, pub)
		return err
	}
	if c.json {
		return c.printValue(map[string]string{"privateKey": priv, "publicKey": pub})
	}
	fmt.Fprintf(c.stderr, "public key (the user under the signature scheme): %s\n", pub)
	_, err = fmt.Fprintln(c.stdout, priv)
	return err
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

// printValue prints v as compact JSON on one line, in the style of printJSON (field
// names in lowerCamelCase).
func (c *command) printValue(v any) error {
	return json.NewEncoder(c.stdout).Encode(v)
}
