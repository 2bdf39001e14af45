package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"google.golang.org/protobuf/proto"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/vsstest"
	"github.com/govss/vss/dump"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
	"github.com/govss/vss/internal/app"
	"github.com/govss/vss/internal/pgtest"
)

// signatureApp runs the complete vss-server with signature authentication on the
// embedded store in a directory of its own, or on a PostgreSQL database of its own.
func signatureApp(t *testing.T, postgres bool) string {
	t.Helper()
	cfg := app.Config{Auth: app.AuthConfig{Schemes: "signature"}}
	if postgres {
		cfg.DatabaseURL = pgtest.NewDatabase(t)
	} else {
		cfg.DataDir = t.TempDir()
	}
	return startApp(t, cfg)
}

// fillLarge writes store "big" through cl: 150 values of 10 KiB, more than a few
// import chunks of 64 KiB.
func fillLarge(t *testing.T, cl *vssclient.Client) {
	t.Helper()
	var items []*vssv1.KeyValue
	for i := range 150 {
		items = append(items, &vssv1.KeyValue{Key: fmt.Sprintf("big-%03d", i), Value: bytes.Repeat([]byte{byte(i)}, 10<<10)})
	}
	if _, err := cl.PutObjects(context.Background(), &vssv1.PutObjectRequest{StoreId: "big", TransactionItems: items}); err != nil {
		t.Fatal(err)
	}
}

// sameStores fails t unless the stores ids hold the same keys, versions, values, global
// versions and listing order on both servers.
func sameStores(t *testing.T, got, want kvAPI, ids ...string) {
	t.Helper()
	for _, id := range ids {
		g, w := readStore(t, got, id), readStore(t, want, id)
		if !sameContent(g, w, true) {
			t.Errorf("store %q: %d keys %q, versions %v, global version %d; want %d keys %q, versions %v, global version %d",
				id, len(g.keys), head(g.keys), head(g.versions), g.global, len(w.keys), head(w.keys), head(w.versions), w.global)
		}
	}
}

// head returns the first few elements of s, for messages.
func head[T any](s []T) []T { return s[:min(len(s), 5)] }

// runCtx runs vssctl in-process with ctx, which a test may cancel to interrupt it.
func (c *cli) runCtx(ctx context.Context, args ...string) result {
	c.t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, func(k string) string { return c.env[k] }, strings.NewReader(""), &out, &errOut)
	return result{out.String(), errOut.String(), code}
}

// summarySHA returns the dump's SHA-256 that a summary on standard error gives on a
// line that starts with "SHA-256 ".
func summarySHA(t *testing.T, stderr string) string {
	t.Helper()
	_, after, ok := strings.Cut("\n"+stderr, "\nSHA-256 ")
	if !ok || len(after) < 64 {
		t.Fatalf("no SHA-256 in %q", stderr)
	}
	return after[:64]
}

// TestExportImport exports a user's stores over Connect to a file, imports the file
// into another server, and exports that one: the same data, versions, global versions,
// listing order and SHA-256. A second import is refused, the stores being no longer
// empty.
func TestExportImport(t *testing.T) {
	t.Parallel()
	keyHex, key := newKeyHex(t)
	src, dst := vsstest.Start(t, vsstest.Config{}), vsstest.Start(t, vsstest.Config{})
	srcAPI := vssclient.New(src.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	dstAPI := vssclient.New(dst.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	fillWallet(t, srcAPI)
	dir := t.TempDir()
	path := filepath.Join(dir, "wallet.vssdump")

	c := newCLI(t, src.URL, "VSSCTL_PRIVATE_KEY", keyHex)
	r := c.run("export", "--out", path)
	if r.code != 0 || r.out != "" || !strings.Contains(r.err, "exported 3 stores, 114 entries") || strings.Contains(r.err, "warning") {
		t.Fatalf("export: %v", r)
	}
	header, stores, sum := readDumpFile(t, path)
	if !header.Snapshot || !header.Versions || !header.GlobalVersions || !header.ListingOrder || header.Producer != "vss-server" {
		t.Fatalf("the export's header: %+v", header)
	}
	if summarySHA(t, r.err) != sha(sum.SHA256) {
		t.Fatalf("export printed %q; the trailer's SHA-256 is %s", r.err, sha(sum.SHA256))
	}
	for _, s := range stores {
		if want := readStore(t, srcAPI, s.store.ID); !sameContent(stateOf(s), want, true) || s.store.HasGlobalVersion != (s.store.ID == "wallet") {
			t.Errorf("store %q in the dump: %+v (global version present: %v), the server holds %+v", s.store.ID, stateOf(s), s.store.HasGlobalVersion, want)
		}
	}
	c.fails(exitUsage, "exports every store", "export", "--out", path+"2", "--store-id", "wallet")
	c.fails(exitUsage, "does not take --store-id", "import", "--store-id", "wallet", path)

	d := newCLI(t, dst.URL, "VSSCTL_PRIVATE_KEY", keyHex)
	r = d.run("import", path)
	if r.code != 0 || !strings.Contains(r.err, "imported 3 stores, 114 entries") || !strings.Contains(r.err, "verified every store") ||
		summarySHA(t, r.err) != sha(sum.SHA256) {
		t.Fatalf("import: %v", r)
	}
	sameStores(t, dstAPI, srcAPI, walletStores...)
	var again struct{ SHA256 string }
	if err := json.Unmarshal([]byte(d.ok("export", "--json", "--out", filepath.Join(dir, "again.vssdump"))), &again); err != nil || again.SHA256 != sha(sum.SHA256) {
		t.Fatalf("export of the target: %+v, %v; want SHA-256 %s", again, err, sha(sum.SHA256))
	}
	// The same dump again: its import is done, nothing is sent, the result is the same.
	r = d.run("import", path)
	if r.code != 0 || summarySHA(t, r.err) != sha(sum.SHA256) {
		t.Fatalf("the same dump imported again: %v", r)
	}
	// Another export of the same data is another import: refused, the stores hold data.
	r = d.run("import", filepath.Join(dir, "again.vssdump"))
	if r.code != exitPrecondition || !strings.Contains(r.err, "not empty") || !strings.Contains(r.err, "vssctl delete-store") {
		t.Fatalf("import into stores that are not empty: %v", r)
	}
	sameStores(t, dstAPI, srcAPI, walletStores...) // the refusal kept the stores as they were

	// From standard input, in the JSON form.
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	third := vsstest.Start(t, vsstest.Config{})
	var res struct {
		ImportID        string
		Stores, Entries int
		SHA256          string
	}
	tr := newCLI(t, third.URL, "VSSCTL_PRIVATE_KEY", keyHex).runIn(string(in), "import", "--json", "-")
	if err := json.Unmarshal([]byte(tr.out), &res); tr.code != 0 || err != nil || res.Stores != 3 || res.Entries != 114 || res.SHA256 != sha(sum.SHA256) || !strings.HasPrefix(res.ImportID, "file-") {
		t.Fatalf("import --json -: %v (%+v, %v)", tr, res, err)
	}
}

// TestImportRefusesBadDumps imports each bad dump over Connect: exit code 5, a message
// that says what is wrong, and nothing kept on the server.
func TestImportRefusesBadDumps(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{NoAuth: true})
	api := vssclient.New(srv.URL)
	c := newCLI(t, srv.URL)
	dir := t.TempDir()
	for name, bad := range badDumps(t, goodDump(t)) {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, bad.data, 0o600); err != nil {
			t.Fatal(err)
		}
		r := c.run("import", "--chunk-size", "4KiB", path)
		if r.code != exitInvalid || !strings.Contains(r.err, bad.err.Error()) {
			t.Errorf("import of the %s file: %v", name, r)
		}
		for _, id := range []string{"a", "b"} {
			if got := readStore(t, api, id); len(got.keys) != 0 || got.global != 0 {
				t.Errorf("after the %s file: store %q holds %+v", name, id, got)
			}
		}
	}
}

// TestImportRefusesDatabaseDump refuses to import the dump of a whole database (what
// vss-server admin export writes) as a user, into either kind of server.
func TestImportRefusesDatabaseDump(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w, err := dump.NewWriter(&buf, dump.Header{Producer: "test", Created: time.Now(), Scope: dump.ScopeDatabase})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.BeginStore(dump.Store{User: "someone", ID: "s"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Entry(dump.Entry{Key: "k", Version: 1, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.EndStore(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "database.vssdump")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := vsstest.Start(t, vsstest.Config{NoAuth: true})
	newCLI(t, srv.URL).fails(exitInvalid, "vss-server admin import", "import", path)
	newCLI(t, srv.URL+"/vss").fails(exitInvalid, "vss-server admin import", "import", "--allow-new-versions", path)
	if got := readStore(t, vssclient.New(srv.URL), "s"); len(got.keys) != 0 {
		t.Fatalf("the refused dump wrote %q", got.keys)
	}
}

// cutter is a reverse proxy on loopback in front of a server. It records the offset of
// each ImportData chunk it passes, and calls cut once it has passed the after-th (when
// after is not 0): a test interrupts vssctl there. It may also lose the server's answer
// to the drop-th chunk, cutting the connection after the server has committed it.
type cutter struct {
	URL string

	mu      sync.Mutex
	offsets []int64
	sizes   []int // the chunks' sizes
	after   int
	cut     func()
	drop    int
}

// startCutter starts a cutter in front of the server at target.
func startCutter(t *testing.T, target string) *cutter {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	c := &cutter{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != vssv1connect.VssServiceImportDataProcedure {
			proxy.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req vssv1.ImportDataRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("cutter: an ImportData body that does not decode: %v", err)
		}
		c.mu.Lock()
		c.offsets = append(c.offsets, req.GetOffset())
		c.sizes = append(c.sizes, len(req.GetChunk()))
		n, after, cut, drop := len(c.offsets), c.after, c.cut, c.drop
		c.mu.Unlock()
		if n == drop {
			proxy.ServeHTTP(httptest.NewRecorder(), r)
			panic(http.ErrAbortHandler) // the connection breaks: the answer is lost
		}
		proxy.ServeHTTP(w, r)
		if n == after {
			cut()
		}
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// interruptAfter makes the cutter call cut after n more ImportData requests, and forgets
// the offsets recorded so far.
func (c *cutter) interruptAfter(n int, cut func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offsets, c.sizes, c.after, c.cut = nil, nil, n, cut
}

// loseAnswer makes the cutter lose the answer to the n-th ImportData request from now
// on, and forgets the offsets recorded so far.
func (c *cutter) loseAnswer(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offsets, c.sizes, c.after, c.drop = nil, nil, 0, n
}

// sent returns the offsets of the ImportData requests passed since interruptAfter or
// loseAnswer.
func (c *cutter) sent() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int64(nil), c.offsets...)
}

// largest returns the size of the largest chunk passed since interruptAfter or
// loseAnswer.
func (c *cutter) largest() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Max(append(c.sizes, 0))
}

// TestMigrateBetweenStores migrates a user's data from the embedded store to
// PostgreSQL and back to the embedded store, to another user the second time: each
// migrate checks the result by checksum, and the last server holds what the first
// did, versions, global versions and listing order included.
func TestMigrateBetweenStores(t *testing.T) {
	t.Parallel()
	keyHex, key := newKeyHex(t)
	otherHex, other := newKeyHex(t)
	embedded, postgres, back := signatureApp(t, false), signatureApp(t, true), signatureApp(t, false)
	api := func(url string, k *secp256k1.PrivateKey) *vssclient.Client {
		return vssclient.New(url, vssclient.WithHeaders(vssclient.Signature(k)))
	}
	fillWallet(t, api(embedded, key))
	fillLarge(t, api(embedded, key))
	stores := append([]string{"big"}, walletStores...)
	c := newCLI(t, "", "VSSCTL_PRIVATE_KEY", keyHex)

	r := c.run("migrate", "--from", embedded, "--to", postgres)
	if r.code != 0 || !strings.Contains(r.err, "moved 4 stores, 264 entries") || !strings.Contains(r.err, `store "big": 150 entries`) ||
		!strings.Contains(r.err, "exported again, holds every store with the same checksum") {
		t.Fatalf("migrate to PostgreSQL: %v", r)
	}
	first := summarySHA(t, r.err)
	sameStores(t, api(postgres, key), api(embedded, key), stores...)

	r = c.run("migrate", "--from", postgres, "--to", back, "--to-private-key", otherHex)
	if r.code != 0 || summarySHA(t, r.err) != first {
		t.Fatalf("migrate back to the embedded store: %v; want SHA-256 %s", r, first)
	}
	sameStores(t, api(back, other), api(embedded, key), stores...)
	if got := readStore(t, api(back, key), "wallet"); len(got.keys) != 0 {
		t.Fatalf("the source's user holds %q on the target", got.keys)
	}
	var sum struct{ SHA256 string }
	out := newCLI(t, back, "VSSCTL_PRIVATE_KEY", otherHex).ok("export", "--json", "--out", filepath.Join(t.TempDir(), "back.vssdump"))
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.SHA256 != first {
		t.Fatalf("export of the last server: %q, %v; want SHA-256 %s", out, err, first)
	}
	// Done is done: the same migrate again is refused, the stores being no longer empty.
	c.fails(exitPrecondition, "not empty", "migrate", "--from", embedded, "--to", postgres, "--no-verify")
}

// TestMigrateResumes interrupts a migrate after a few chunks, by canceling it and by
// killing the process, and runs it again: it resumes where the target stands, and ends
// with the source's checksum. Under another import id the half-imported stores are
// refused.
func TestMigrateResumes(t *testing.T) {
	t.Parallel()
	keyHex, key := newKeyHex(t)
	src := signatureApp(t, false)
	srcAPI := vssclient.New(src, vssclient.WithHeaders(vssclient.Signature(key)))
	fillWallet(t, srcAPI)
	fillLarge(t, srcAPI)
	stores := append([]string{"big"}, walletStores...)
	c := newCLI(t, "", "VSSCTL_PRIVATE_KEY", keyHex)

	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		dst := signatureApp(t, true)
		dstAPI := vssclient.New(dst, vssclient.WithHeaders(vssclient.Signature(key)))
		proxy := startCutter(t, dst)
		args := []string{"migrate", "--from", src, "--to", proxy.URL, "--chunk-size", "64KiB"}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		proxy.interruptAfter(5, cancel)
		if r := c.runCtx(ctx, args...); r.code == 0 {
			t.Fatalf("the interrupted migrate succeeded: %v", r)
		}
		partial := readStore(t, dstAPI, "big")
		if len(partial.keys) == 0 || len(partial.keys) >= 150 {
			t.Fatalf("after the interruption the target holds %d keys of store big, want some", len(partial.keys))
		}
		// Under another id (the target's URL, spelled another way), the stores that hold
		// the interrupted import's keys are not empty.
		c.fails(exitPrecondition, "not empty", "migrate", "--from", src, "--to", dst, "--chunk-size", "64KiB")
		proxy.interruptAfter(0, nil)
		r := c.run(args...)
		if r.code != 0 || !strings.Contains(r.err, "moved 4 stores, 264 entries") {
			t.Fatalf("the migrate run again: %v", r)
		}
		sameStores(t, dstAPI, srcAPI, stores...)
	})
	t.Run("killed", func(t *testing.T) {
		t.Parallel()
		dst := signatureApp(t, false)
		dstAPI := vssclient.New(dst, vssclient.WithHeaders(vssclient.Signature(key)))
		proxy := startCutter(t, dst)
		args := []string{"migrate", "--from", src, "--to", proxy.URL, "--chunk-size", "64KiB"}
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), "VSSCTL_TEST_MAIN=1", "VSSCTL_PRIVATE_KEY="+keyHex)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		started := make(chan *os.Process, 1)
		proxy.interruptAfter(4, func() { (<-started).Kill() }) // SIGKILL
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		started <- cmd.Process
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("the migrate was not killed: %v, %s", err, out.String())
		}
		if partial := readStore(t, dstAPI, "big"); len(partial.keys) == 0 || len(partial.keys) >= 150 {
			t.Fatalf("after the kill the target holds %d keys of store big, want some", len(partial.keys))
		}
		proxy.interruptAfter(0, nil)
		if r := c.run(append(args, "--no-verify")...); r.code != 0 || !strings.Contains(r.err, "not exported again") {
			t.Fatalf("the migrate run again: %v", r)
		}
		sameStores(t, dstAPI, srcAPI, stores...)
	})
}

// TestMigrateLostAnswer loses the server's answer to a chunk it committed, as a server
// that crashes after its commit does: vssctl sends the chunk again, the server answers
// with the offset it expects instead, and the migrate goes on and ends equal.
func TestMigrateLostAnswer(t *testing.T) {
	t.Parallel()
	keyHex, key := newKeyHex(t)
	src, dst := vsstest.Start(t, vsstest.Config{}), vsstest.Start(t, vsstest.Config{})
	srcAPI := vssclient.New(src.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	fillLarge(t, srcAPI)
	dstAPI := vssclient.New(dst.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	if _, err := dstAPI.PutObjects(context.Background(), &vssv1.PutObjectRequest{StoreId: "mine", TransactionItems: []*vssv1.KeyValue{{Key: "k"}}}); err != nil {
		t.Fatal(err)
	}
	proxy := startCutter(t, dst.URL)
	proxy.loseAnswer(3)
	r := newCLI(t, "", "VSSCTL_PRIVATE_KEY", keyHex).run("migrate", "--from", src.URL, "--to", proxy.URL, "--chunk-size", "64KiB")
	if r.code != 0 || !strings.Contains(r.err, "moved 1 stores, 150 entries") || !strings.Contains(r.err, "also holds 1 other stores") {
		t.Fatalf("migrate with a lost answer: %v", r)
	}
	if sent := proxy.sent(); len(sent) < 4 || sent[2] != sent[3] {
		t.Fatalf("offsets sent: %v; want the third chunk sent again", head(sent))
	}
	sameStores(t, dstAPI, srcAPI, "big")
}

// TestImportLargeRecord imports a value larger than a chunk: the server asks for the
// whole record (next_record_bytes), and the next chunk holds it.
func TestImportLargeRecord(t *testing.T) {
	t.Parallel()
	src, dst := vsstest.Start(t, vsstest.Config{NoAuth: true}), vsstest.Start(t, vsstest.Config{NoAuth: true})
	srcAPI := vssclient.New(src.URL)
	big := bytes.Repeat([]byte("large "), 50<<10) // 300 KiB
	if _, err := srcAPI.PutObjects(context.Background(), &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{
		{Key: "small", Value: []byte("v")}, {Key: "large", Value: big}, {Key: "after", Value: []byte("w")}}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "large.vssdump")
	newCLI(t, src.URL).ok("export", "--out", path)
	proxy := startCutter(t, dst.URL)
	proxy.interruptAfter(0, nil)
	if r := newCLI(t, proxy.URL).run("import", "--chunk-size", "64KiB", path); r.code != 0 {
		t.Fatalf("import: %v", r)
	}
	if n := proxy.largest(); n < len(big) {
		t.Fatalf("the largest chunk held %d bytes, less than the value of %d", n, len(big))
	}
	sameStores(t, vssclient.New(dst.URL), srcAPI, "s")
}

// TestImportResumes interrupts the import of a file and runs it again: the second run
// asks the server where the import stands and sends only the rest. --abort gives an
// interrupted import up, and the server keeps nothing of it.
func TestImportResumes(t *testing.T) {
	t.Parallel()
	keyHex, key := newKeyHex(t)
	src := vsstest.Start(t, vsstest.Config{})
	srcAPI := vssclient.New(src.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	fillWallet(t, srcAPI)
	fillLarge(t, srcAPI)
	path := filepath.Join(t.TempDir(), "wallet.vssdump")
	newCLI(t, src.URL, "VSSCTL_PRIVATE_KEY", keyHex).ok("export", "--out", path)

	dst := signatureApp(t, true)
	dstAPI := vssclient.New(dst, vssclient.WithHeaders(vssclient.Signature(key)))
	proxy := startCutter(t, dst)
	c := newCLI(t, proxy.URL, "VSSCTL_PRIVATE_KEY", keyHex)
	interrupt := func() {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		proxy.interruptAfter(4, cancel)
		if r := c.runCtx(ctx, "import", "--chunk-size", "64KiB", path); r.code == 0 {
			t.Fatalf("the interrupted import succeeded: %v", r)
		}
		if partial := readStore(t, dstAPI, "big"); len(partial.keys) == 0 || len(partial.keys) >= 150 {
			t.Fatalf("after the interruption the target holds %d keys of store big, want some", len(partial.keys))
		}
	}

	interrupt()
	if r := c.run("import", "--abort", path); r.code != 0 || !strings.Contains(r.err, "gave up import file-") {
		t.Fatalf("import --abort: %v", r)
	}
	for _, id := range []string{"big", ""} {
		if got := readStore(t, dstAPI, id); len(got.keys) != 0 {
			t.Fatalf("after --abort, store %q holds %d keys", id, len(got.keys))
		}
	}

	interrupt()
	proxy.interruptAfter(0, nil)
	r := c.run("import", "--chunk-size", "64KiB", path)
	if r.code != 0 || !strings.Contains(r.err, "imported 4 stores, 264 entries") {
		t.Fatalf("the import run again: %v", r)
	}
	// The probe at offset 1, then the rest from where the server stood.
	if sent := proxy.sent(); len(sent) < 2 || sent[0] != 1 || sent[1] == 0 {
		t.Fatalf("offsets of the import run again: %v; want 1 (the question), then where the first run stopped", head(sent))
	}
	sameStores(t, dstAPI, srcAPI, append([]string{"big"}, walletStores...)...)
}

// TestMigrateVSSHTTPAndConnect migrates from a server's VSS HTTP API (list and get) to a
// Connect server, which keeps the versions read, and from a Connect server to a VSS
// HTTP API, which gives new versions.
func TestMigrateVSSHTTPAndConnect(t *testing.T) {
	t.Parallel()
	keyHex, key := newKeyHex(t)
	src, mid, dst := vsstest.Start(t, vsstest.Config{}), vsstest.Start(t, vsstest.Config{}), vsstest.Start(t, vsstest.Config{})
	srcAPI := vssclient.New(src.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	midAPI := vssclient.New(mid.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	dstAPI := vssclient.New(dst.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	fillWallet(t, srcAPI)
	c := newCLI(t, "", "VSSCTL_PRIVATE_KEY", keyHex)

	r := c.run("migrate", "--from", src.URL+"/vss", "--to", mid.URL, "--store-id", "wallet", "--store-id", "notes", "--store-id", "")
	if r.code != 0 || !strings.Contains(r.err, "moved 3 stores, 114 entries") || !strings.Contains(r.err, "same checksum") || !strings.Contains(r.err, "not in one snapshot") {
		t.Fatalf("migrate from a VSS HTTP API: %v", r)
	}
	sameStores(t, midAPI, srcAPI, walletStores...)

	r = c.run("migrate", "--from", mid.URL, "--to", dst.URL+"/vss", "--allow-new-versions", "--json")
	var res struct {
		Stores, Entries, Written, Skipped int
		NewVersions, Verified             bool
	}
	if err := json.Unmarshal([]byte(r.out), &res); r.code != 0 || err != nil || res.Stores != 3 || res.Entries != 114 || res.Written != 114 || !res.NewVersions || !res.Verified {
		t.Fatalf("migrate --json to a VSS HTTP API: %v (%+v, %v)", r, res, err)
	}
	for _, id := range walletStores {
		got, want := readStore(t, dstAPI, id), readStore(t, srcAPI, id)
		if !sameContent(got, want, false) || got.global != want.global {
			t.Errorf("store %q: %+v, want %+v", id, got, want)
		}
	}
	c.fails(exitUsage, "--store-id names the stores", "migrate", "--from", mid.URL, "--to", src.URL, "--store-id", "wallet")
}

// TestDeleteCommands deletes a store and then every store: a dry run first, a refusal
// without --yes when standard input is not a terminal, a question on a terminal.
func TestDeleteCommands(t *testing.T) {
	t.Parallel()
	keyHex, key := newKeyHex(t)
	srv := vsstest.Start(t, vsstest.Config{})
	api := vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	fillWallet(t, api)
	c := newCLI(t, srv.URL, "VSSCTL_PRIVATE_KEY", keyHex)
	term := func(stdin string, args ...string) result {
		var out, errOut bytes.Buffer
		env := func(k string) string { return c.env[k] }
		code := runWith(context.Background(), args, env, strings.NewReader(stdin), &out, &errOut, terminals{stdin: true})
		return result{out.String(), errOut.String(), code}
	}
	keys := func(id string) int { return len(readStore(t, api, id).keys) }

	r := c.run("delete-store", "wallet")
	if r.code != exitUsage || !strings.Contains(r.err, `would delete store "wallet": 4 keys`) || !strings.Contains(r.err, "--yes") || keys("wallet") != 3 {
		t.Fatalf("delete-store without --yes: %v", r)
	}
	if r := c.run("delete-store", "--dry-run", "wallet"); r.code != 0 || !strings.Contains(r.err, "would delete") || keys("wallet") != 3 {
		t.Fatalf("delete-store --dry-run: %v", r)
	}
	if out := c.ok("delete-store", "--dry-run", "--json", "wallet"); !strings.Contains(out, `"keys":"4"`) || strings.Contains(out, "deleted") {
		t.Fatalf("delete-store --dry-run --json: %q", out)
	}
	if r := term("no\n", "delete-store", "wallet"); r.code != exitUsage || !strings.Contains(r.err, "Type yes") || !strings.Contains(r.err, "not confirmed") || keys("wallet") != 3 {
		t.Fatalf("delete-store answered no: %v", r)
	}
	if r := term("yes\n", "delete-store", "wallet"); r.code != 0 || !strings.Contains(r.err, `deleted store "wallet": 4 keys`) || keys("wallet") != 0 {
		t.Fatalf("delete-store answered yes: %v", r)
	}
	if g := readStore(t, api, "wallet").global; g != 0 || keys("notes") != 110 {
		t.Fatalf("after delete-store: global version %d, notes %d keys", g, keys("notes"))
	}
	if out := c.ok("delete-store", "--yes", "--json", ""); !strings.Contains(out, `"deleted":true`) || keys("") != 0 {
		t.Fatalf("delete-store --yes --json '': %q", out)
	}
	c.fails(exitUsage, "as its argument", "delete-store", "--store-id", "notes", "notes")

	r = c.run("delete-all")
	if r.code != exitUsage || !strings.Contains(r.err, "would delete every store of the user: 1 stores, 110 keys") || keys("notes") != 110 {
		t.Fatalf("delete-all without --yes: %v", r)
	}
	if r := c.run("delete-all", "--yes"); r.code != 0 || !strings.Contains(r.err, "deleted every store") || keys("notes") != 0 {
		t.Fatalf("delete-all --yes: %v", r)
	}
	if r := c.run("delete-all", "--dry-run"); r.code != 0 || !strings.Contains(r.err, "0 stores, 0 keys") {
		t.Fatalf("delete-all --dry-run after deleting: %v", r)
	}
	newCLI(t, srv.URL).fails(exitAuth, "unauthenticated", "delete-all", "--yes")
	c.fails(exitUsage, "cannot delete a store", "--server", srv.URL+"/vss", "delete-all", "--yes")
}

// TestTransferProgress shows the progress of export, import and migrate, with their
// MB/s, on standard error when it is a terminal, and clears it before the summary.
func TestTransferProgress(t *testing.T) {
	t.Parallel()
	src, dst := vsstest.Start(t, vsstest.Config{NoAuth: true}), vsstest.Start(t, vsstest.Config{NoAuth: true})
	fillWallet(t, vssclient.New(src.URL))
	path := filepath.Join(t.TempDir(), "wallet.vssdump")
	onTerminal := func(server string, args ...string) result {
		var out, errOut bytes.Buffer
		env := func(k string) string { return map[string]string{"VSSCTL_SERVER": server}[k] }
		code := runWith(context.Background(), args, env, strings.NewReader(""), &out, &errOut, terminals{stderr: true})
		return result{out.String(), errOut.String(), code}
	}
	for _, tc := range []struct {
		server   string
		args     []string
		progress string
	}{
		{src.URL, []string{"export", "--out", path}, "exported "},
		{dst.URL, []string{"import", path}, "imported "},
		{src.URL, []string{"delete-store", "--yes", "notes"}, ""},
		{"", []string{"migrate", "--from", dst.URL, "--to", src.URL + "/vss", "--allow-new-versions"}, "imported "},
	} {
		r := onTerminal(tc.server, tc.args...)
		if r.code != 0 || tc.progress != "" && (!strings.Contains(r.err, "\r"+tc.progress) || !strings.Contains(r.err, " MB/s") || !strings.Contains(r.err, "\r\033[K")) {
			t.Errorf("%q on a terminal: %v; want progress %q with MB/s, then cleared", tc.args, r, tc.progress)
		}
	}
}
