package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/govss/vss/dump"
	dumpv1 "github.com/govss/vss/gen/vss/dump/v1"
	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/postgres"
	"github.com/govss/vss/storage/sqlite"
)

// sourceStores are the stores fillSource writes, by user.
var sourceStores = map[string][]string{
	"alice": {"config", "only-global-version", "wallet"},
	"bob":   {"wallet"},
	"carol": {"wallet"},
}

// sourceUsers are the users of sourceStores, in order.
var sourceUsers = []string{"alice", "bob", "carol"}

// fillSource writes the data the export and import tests move into s: alice has a
// store with updated keys, a key deleted and created again (which moves it in the
// listing) and global version 3, a store holding only a global version, and a wallet of
// n entries of about 1 KiB; bob a wallet of 2n entries; carol a wallet of 3 entries.
func fillSource(t *testing.T, s storage.Store, n int) {
	t.Helper()
	ctx := t.Context()
	put := func(user, store string, kvs ...storage.KeyValue) {
		t.Helper()
		if err := s.Put(ctx, user, storage.PutRequest{StoreID: store, Puts: kvs}); err != nil {
			t.Fatalf("put %s/%s: %v", user, store, err)
		}
	}
	for i := range 5 {
		put("alice", "config", storage.KeyValue{Key: fmt.Sprintf("k%d", i), Value: fmt.Appendf(nil, "config %d", i)})
	}
	put("alice", "config", storage.KeyValue{Key: "k1", Version: 1, Value: []byte("k1 again")})
	put("alice", "config", storage.KeyValue{Key: "k1", Version: 2, Value: []byte("k1 third")})
	if err := s.Delete(ctx, "alice", "config", "k2", -1); err != nil {
		t.Fatal(err)
	}
	put("alice", "config", storage.KeyValue{Key: "k2", Value: nil}) // created again, empty
	for v := range int64(3) {
		put("alice", "config", storage.KeyValue{Key: storage.GlobalVersionKey, Version: v})
	}
	put("alice", "only-global-version", storage.KeyValue{Key: storage.GlobalVersionKey, Version: 0})
	bulk := func(user string, n int) {
		const batch = 100
		for i := 0; i < n; i += batch {
			var kvs []storage.KeyValue
			for j := i; j < min(i+batch, n); j++ {
				kvs = append(kvs, storage.KeyValue{Key: fmt.Sprintf("%s/monitor/%05d", user, j), Value: entryValue(user, j)})
			}
			put(user, "wallet", kvs...)
		}
		// A few updates: versions above 1.
		for j := 0; j < n; j += 97 {
			put(user, "wallet", storage.KeyValue{Key: fmt.Sprintf("%s/monitor/%05d", user, j), Version: 1, Value: entryValue(user, j+1)})
		}
	}
	bulk("alice", n)
	bulk("bob", 2*n)
	bulk("carol", 3)
}

// entryValue is the value of entry i of user's wallet: about 1 KiB, different for each.
func entryValue(user string, i int) []byte {
	v := bytes.Repeat([]byte{byte('a' + i%26)}, 900+i%200)
	return append(v, fmt.Sprintf("%s-%d", user, i)...)
}

// storeView is what a store shows through the storage API: its listing (keys and
// versions, newest first), its global version and its values.
type storeView struct {
	Listing []string
	Global  int64
	Values  map[string]string
}

// viewUser reads the stores ids of user from s through the storage API, and tells how
// many stores the user has.
func viewUser(t *testing.T, s storage.Store, user string, ids []string) (map[string]storeView, int64) {
	t.Helper()
	ctx := t.Context()
	views := map[string]storeView{}
	for _, id := range ids {
		v := storeView{Values: map[string]string{}}
		before := storage.ListStart
		for {
			page, err := s.List(ctx, user, storage.ListRequest{StoreID: id, Before: before, Limit: 100, WithGlobalVersion: true})
			if err != nil {
				t.Fatal(err)
			}
			if before == storage.ListStart {
				v.Global = page.GlobalVersion
			}
			for _, k := range page.Keys {
				v.Listing = append(v.Listing, fmt.Sprintf("%s@%d", k.Key, k.Version))
				kv, err := s.Get(ctx, user, id, k.Key)
				if err != nil {
					t.Fatal(err)
				}
				v.Values[k.Key] = string(kv.Value)
			}
			if len(page.Keys) < 100 {
				break
			}
			before = page.Keys[len(page.Keys)-1].SortOrder
		}
		views[id] = v
	}
	usage, err := s.(storage.Admin).Usage(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	var stores int64
	if len(usage) > 0 {
		stores = usage[0].Stores
	}
	return views, stores
}

// checkSameUser fails unless user b in store sb shows what user a of sourceStores shows
// in sa.
func checkSameUser(t *testing.T, sa storage.Store, a string, sb storage.Store, b string) {
	t.Helper()
	va, na := viewUser(t, sa, a, sourceStores[a])
	vb, nb := viewUser(t, sb, b, sourceStores[a])
	if na != nb {
		t.Errorf("%s has %d stores, %s %d", b, nb, a, na)
	}
	for id, want := range va {
		got := vb[id]
		if !slices.Equal(got.Listing, want.Listing) {
			t.Errorf("%s/%s lists %d keys %.200v…, want %d keys %.200v…", b, id, len(got.Listing), got.Listing, len(want.Listing), want.Listing)
		}
		if got.Global != want.Global {
			t.Errorf("%s/%s global version %d, want %d", b, id, got.Global, want.Global)
		}
		for k, v := range want.Values {
			if got.Values[k] != v {
				t.Errorf("%s/%s/%s = %.40q, want %.40q", b, id, k, got.Values[k], v)
			}
		}
	}
}

// newEmbeddedSource fills a new embedded store with fillSource and returns its data
// directory; the store is closed.
func newEmbeddedSource(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	s, err := sqlite.Open(t.Context(), filepath.Join(dir, "vss.db"))
	if err != nil {
		t.Fatal(err)
	}
	fillSource(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openEmbedded opens the embedded store of dir for the test.
func openEmbedded(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(dir, "vss.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openPostgres opens the PostgreSQL store at url for the test.
func openPostgres(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newPostgresDatabase creates the empty database name in the cluster of adminURL and
// returns its URL.
func newPostgresDatabase(t *testing.T, adminURL, name string) string {
	t.Helper()
	execAt(t, adminURL, "CREATE DATABASE "+name)
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// adminResult is what one admin command did.
type adminResult struct {
	code           int
	stdout, stderr string
}

// runAdminCmd runs an admin command in this process with stdin and no environment.
func runAdminCmd(ctx context.Context, stdin io.Reader, args ...string) adminResult {
	var out, errOut bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code := runAdminWith(ctx, args, func(string) string { return "" }, stdin, &out, &errOut, false)
	return adminResult{code, out.String(), errOut.String()}
}

// admin runs an admin command and fails t unless it exits 0.
func admin(t *testing.T, args ...string) adminResult {
	t.Helper()
	r := runAdminCmd(t.Context(), nil, args...)
	if r.code != 0 {
		t.Fatalf("admin %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

var shaLine = regexp.MustCompile(`(?m)^vss-server admin (?:export|import): SHA-256 ([0-9a-f]{64})$`)

// summarySHA returns the SHA-256 an export or import printed in its summary.
func summarySHA(t *testing.T, r adminResult) string {
	t.Helper()
	m := shaLine.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no SHA-256 in the summary: %q", r.stderr)
	}
	return m[1]
}

// checksum runs export --checksum-only and returns the SHA-256 it printed.
func checksum(t *testing.T, args ...string) string {
	t.Helper()
	r := admin(t, append([]string{"export", "--checksum-only"}, args...)...)
	sum := strings.TrimSpace(r.stdout)
	if len(sum) != 64 || summarySHA(t, r) != sum {
		t.Fatalf("export --checksum-only printed %q, summary %q", r.stdout, r.stderr)
	}
	return sum
}

// TestAdminExportImportRoundTrip moves a user and then a whole database embedded →
// PostgreSQL → embedded through admin export and admin import: each end gives the same
// checksum, and lists the same keys, versions and global versions in the same order,
// with the same values.
func TestAdminExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	src := newEmbeddedSource(t, 300)
	cluster := pgtest.NewConfiguredCluster(t, pgtest.ClusterOptions{})
	dir := t.TempDir()

	t.Run("one user", func(t *testing.T) {
		pg := newPostgresDatabase(t, cluster, "vss_user")
		file := filepath.Join(dir, "alice.vssdump")
		r := admin(t, "export", "--user", "alice", "--data-dir", src, "--out", file)
		want := summarySHA(t, r)
		if !strings.Contains(r.stderr, "1 user, 3 stores, 305 entries,") || !strings.Contains(r.stderr, "MB/s") || !strings.Contains(r.stderr, " to "+file+"\n") {
			t.Errorf("export summary: %q", r.stderr)
		}
		if _, err := os.Stat(file + ".partial"); !os.IsNotExist(err) {
			t.Errorf("%s.partial is left (%v)", file, err)
		}
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the dump file: %v, %v; want mode 0600", fi, err)
		}
		if got := checksum(t, "--user", "alice", "--data-dir", src); got != want {
			t.Errorf("export --checksum-only = %s, the export's summary %s", got, want)
		}

		// Into PostgreSQL, with the progress line of a terminal.
		var errOut bytes.Buffer
		code := runAdminWith(t.Context(), []string{"import", file, "--user", "alice", "--database-url", pg},
			func(string) string { return "" }, strings.NewReader(""), io.Discard, &errOut, true)
		if code != 0 || !strings.Contains(errOut.String(), "\rimported ") || !strings.Contains(errOut.String(), " written, ") {
			t.Fatalf("import: exit %d, %q", code, errOut.String())
		}
		if r := (adminResult{stderr: errOut.String()}); summarySHA(t, r) != want || !strings.Contains(r.stderr, "1 user, 3 stores, 305 entries,") ||
			!strings.Contains(r.stderr, "every store verified") || strings.Contains(r.stderr, "resumed") {
			t.Errorf("import summary: %q", r.stderr)
		}
		if got := checksum(t, "--user", "alice", "--database-url", pg); got != want {
			t.Errorf("PostgreSQL's export of alice: %s, want %s", got, want)
		}
		// Again: alice's stores are not empty now, and nothing is written or removed.
		r = runAdminCmd(t.Context(), nil, "import", file, "--user", "alice", "--database-url", pg)
		if r.code != 1 || !strings.Contains(r.stderr, `is not empty (user "alice")`) || !strings.Contains(r.stderr, "Nothing of it was imported.") {
			t.Errorf("import into alice's stores again: exit %d, %q", r.code, r.stderr)
		}
		if got := checksum(t, "--user", "alice", "--database-url", pg); got != want {
			t.Errorf("PostgreSQL's export of alice after the refused import: %s, want %s", got, want)
		}
		// The same dump for another user: a user dump does not name its user.
		admin(t, "import", file, "--user", "dave", "--database-url", pg)
		if got := checksum(t, "--user", "dave", "--database-url", pg); got != want {
			t.Errorf("PostgreSQL's export of dave: %s, want %s", got, want)
		}

		// And back, into an embedded store that does not exist yet: import creates it.
		back := filepath.Join(t.TempDir(), "new", "data")
		file2 := filepath.Join(dir, "alice-pg.vssdump")
		admin(t, "export", "--user", "alice", "--database-url", pg, "--out", file2)
		admin(t, "import", file2, "--user", "alice", "--data-dir", back)
		if got := checksum(t, "--user", "alice", "--data-dir", back); got != want {
			t.Errorf("the embedded store's export of alice: %s, want %s", got, want)
		}

		source, viaPG, dest := openEmbedded(t, src), openPostgres(t, pg), openEmbedded(t, back)
		checkSameUser(t, source, "alice", viaPG, "alice")
		checkSameUser(t, source, "alice", viaPG, "dave")
		checkSameUser(t, source, "alice", dest, "alice")
		if usage, err := dest.Usage(t.Context(), ""); err != nil || len(usage) != 1 {
			t.Errorf("users in the new embedded store: %v, %v; want alice alone", usage, err)
		}
	})

	t.Run("every user", func(t *testing.T) {
		pg := newPostgresDatabase(t, cluster, "vss_all")
		file := filepath.Join(dir, "all.vssdump")
		// To standard output, as in `admin export > file`.
		out, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		var errOut bytes.Buffer
		code := runAdminWith(t.Context(), []string{"export", "--data-dir", src, "--out", "-"},
			func(string) string { return "" }, strings.NewReader(""), out, &errOut, false)
		if err := out.Close(); err != nil || code != 0 {
			t.Fatalf("export to standard output: exit %d, %q, %v", code, errOut.String(), err)
		}
		r := adminResult{stderr: errOut.String()}
		want := summarySHA(t, r)
		if !strings.Contains(r.stderr, "3 users, 5 stores, 908 entries,") {
			t.Errorf("export summary: %q", r.stderr)
		}
		rd, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		dr, err := dump.NewReader(rd, dump.ReaderOptions{})
		if err != nil || dr.Header().Scope != dump.ScopeDatabase || dr.Header().Snapshot || !strings.HasPrefix(dr.Header().Producer, "vss-server ") {
			t.Fatalf("header of a database dump: %+v, %v; want SCOPE_DATABASE, snapshot false", dr.Header(), err)
		}

		// From standard input.
		in, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		r = runAdminCmd(t.Context(), in, "import", "-", "--database-url", pg)
		if r.code != 0 || summarySHA(t, r) != want || !strings.Contains(r.stderr, "3 users, 5 stores, 908 entries,") {
			t.Fatalf("import: exit %d, %q", r.code, r.stderr)
		}
		if got := checksum(t, "--database-url", pg); got != want {
			t.Errorf("PostgreSQL's export: %s, want %s", got, want)
		}
		back := t.TempDir()
		file2 := filepath.Join(dir, "all-pg.vssdump")
		admin(t, "export", "--database-url", pg, "--out", file2)
		admin(t, "import", file2, "--data-dir", back)
		if got := checksum(t, "--data-dir", back); got != want {
			t.Errorf("the embedded store's export: %s, want %s", got, want)
		}
		source, viaPG, dest := openEmbedded(t, src), openPostgres(t, pg), openEmbedded(t, back)
		for _, u := range sourceUsers {
			checkSameUser(t, source, u, viaPG, u)
			checkSameUser(t, source, u, dest, u)
			// A user of a database dump has the checksum of its own export.
			if a, b := checksum(t, "--user", u, "--data-dir", src), checksum(t, "--user", u, "--data-dir", back); a != b {
				t.Errorf("%s: %s, then %s", u, a, b)
			}
		}
		if got := queryStrings(t, pg, "SELECT count(*)::text FROM vss_imports"); got[0] != "0" {
			t.Errorf("%s import records are left", got[0])
		}
	})
}

// importRecords counts the import records in the store of dir (embedded) or url.
func importRecords(t *testing.T, dir, url string) string {
	t.Helper()
	const q = "SELECT (SELECT count(*) FROM vss_imports) || ' ' || (SELECT count(*) FROM vss_import_sessions)"
	if url != "" {
		return queryStrings(t, url, q)[0]
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "vss.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n string
	if err := db.QueryRowContext(t.Context(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// cancelAfter reads r and cancels after n bytes, going on as an interrupted process
// would not: what comes after the cancel must not be written.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// TestAdminImportInterrupted interrupts an import into the embedded store mid-way (its
// context is cancelled, as Ctrl-C does): it says how to resume, the same command resumes
// and writes fewer entries than the dump holds, and ends with the source's checksum.
// Interrupted again, --abort removes what it wrote.
func TestAdminImportInterrupted(t *testing.T) {
	t.Parallel()
	src := newEmbeddedSource(t, 1000)
	file := filepath.Join(t.TempDir(), "bob.vssdump")
	want := summarySHA(t, admin(t, "export", "--user", "bob", "--data-dir", src, "--out", file))
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	admin(t, "import", file, "--user", "carol", "--data-dir", target) // someone else's data beside
	before := checksum(t, "--data-dir", target)
	interrupt := func() adminResult {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		r := runAdminCmd(ctx, &cancelAfter{r: bytes.NewReader(data), n: len(data) / 2, cancel: cancel},
			"import", "-", "--user", "bob", "--data-dir", target)
		if r.code != 1 || !strings.Contains(r.stderr, "the import was interrupted at byte ") || !strings.Contains(r.stderr, "context canceled.") ||
			!strings.Contains(r.stderr, "run the same command again to resume it") || !strings.Contains(r.stderr, "the same command with --abort") {
			t.Fatalf("interrupted import: exit %d, %q", r.code, r.stderr)
		}
		return r
	}

	interrupt()
	usage, err := openEmbedded(t, target).Usage(t.Context(), "bob")
	if err != nil || len(usage) != 1 || usage[0].Keys < 256 || usage[0].Keys >= 2000 {
		t.Fatalf("bob after the interruption: %+v, %v; want part of the 2000 entries", usage, err)
	}
	r := admin(t, "import", file, "--user", "bob", "--data-dir", target)
	m := regexp.MustCompile(`resumed: (\d+) entr(?:y|ies) written now, (\d+) by an earlier run`).FindStringSubmatch(r.stderr)
	if m == nil || summarySHA(t, r) != want {
		t.Fatalf("resumed import: %q", r.stderr)
	}
	if now, _ := strconv.Atoi(m[1]); now <= 0 || now >= 2000 || m[2] != strconv.Itoa(2000-now) {
		t.Errorf("the resumed import wrote %s entries, %s before; want fewer than the 2000 of the dump", m[1], m[2])
	}
	if got := checksum(t, "--user", "bob", "--data-dir", target); got != want {
		t.Errorf("bob's checksum after the resumed import: %s, want %s", got, want)
	}
	checkSameUser(t, openEmbedded(t, src), "bob", openEmbedded(t, target), "bob")
	if got := importRecords(t, target, ""); got != "0 0" {
		t.Errorf("import records and sessions left: %s", got)
	}

	// Interrupted again (into an emptied user), then given up.
	admin(t, "delete-user", "bob", "--yes", "--data-dir", target)
	interrupt()
	r = admin(t, "import", file, "--user", "bob", "--abort", "--data-dir", target)
	if !strings.Contains(r.stdout, "removed the 1 store it had written") {
		t.Errorf("import --abort: %q", r.stdout)
	}
	if got := checksum(t, "--data-dir", target); got != before {
		t.Errorf("the store after --abort: %s, want %s as before the import", got, before)
	}
	if got := importRecords(t, target, ""); got != "0 0" {
		t.Errorf("import records and sessions left: %s", got)
	}
	r = admin(t, "import", file, "--user", "bob", "--abort", "--data-dir", target)
	if !strings.Contains(r.stdout, "no interrupted import of "+file) {
		t.Errorf("import --abort with nothing to give up: %q", r.stdout)
	}
}

// TestAdminImportResumesAfterKill kills `vss-server admin import` (SIGKILL) while it
// imports into PostgreSQL, then runs the same command again: it resumes, writes fewer
// entries than the dump holds, and the result has the source's checksum.
func TestAdminImportResumesAfterKill(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	src := newEmbeddedSource(t, 1500)
	file := filepath.Join(t.TempDir(), "every-user.vssdump")
	want := summarySHA(t, admin(t, "export", "--data-dir", src, "--out", file))
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pg := newPostgresDatabase(t, pgtest.NewConfiguredCluster(t, pgtest.ClusterOptions{}), "vss")

	// The dump comes through a pipe, of which the first two thirds are written: the
	// import commits what it can and waits for more, and is killed then.
	cmd := exec.Command(bin, "admin", "import", "-", "--database-url", pg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = stdin.Write(data[:len(data)*2/3])
	}()
	conn, err := pgx.Connect(t.Context(), pg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows := func() (n int) {
		_ = conn.QueryRow(t.Context(), "SELECT count(*) FROM vss_db").Scan(&n) // no table before the import's migrations
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for rows() < 2000 {
		if time.Now().After(deadline) {
			t.Fatalf("the import committed %d rows within 60 s; stderr: %s", rows(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	_ = stdin.Close()
	wg.Wait()
	// 4508 entries and 2 global versions.
	if killed := rows(); killed >= 4510 {
		t.Fatalf("the import was complete (%d rows) before it was killed", killed)
	}

	r := admin(t, "import", file, "--database-url", pg)
	m := regexp.MustCompile(`resumed: (\d+) entr(?:y|ies) written now, (\d+) by an earlier run`).FindStringSubmatch(r.stderr)
	if m == nil || summarySHA(t, r) != want {
		t.Fatalf("resumed import: %q", r.stderr)
	}
	if now, _ := strconv.Atoi(m[1]); now <= 0 || now >= 4508 || m[2] != strconv.Itoa(4508-now) {
		t.Errorf("the resumed import wrote %s entries, %s before; want fewer than the 4508 of the dump", m[1], m[2])
	}
	if got := checksum(t, "--database-url", pg); got != want {
		t.Errorf("checksum after the resumed import: %s, want %s", got, want)
	}
	source, dest := openEmbedded(t, src), openPostgres(t, pg)
	for _, u := range sourceUsers {
		checkSameUser(t, source, u, dest, u)
	}
	if got := importRecords(t, "", pg); got != "0 0" {
		t.Errorf("import records and sessions left: %s", got)
	}

	// A killed export (here while it waits for the database) leaves FILE.partial, which
	// no one takes for a dump, and never FILE; the next export replaces it.
	out := filepath.Join(t.TempDir(), "again.vssdump")
	unlock := lockTable(t, pg, "vss_db")
	defer unlock()
	export := exec.Command(bin, "admin", "export", "--database-url", pg, "--out", out)
	export.Env = []string{"PATH=" + os.Getenv("PATH")}
	if err := export.Start(); err != nil {
		t.Fatal(err)
	}
	waitForFile(t, out+".partial")
	if err := export.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = export.Wait()
	unlock()
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the killed export left %s (%v)", out, err)
	}
	if got := summarySHA(t, admin(t, "export", "--database-url", pg, "--out", out)); got != want {
		t.Errorf("export after the killed one: %s, want %s", got, want)
	}
	if _, err := os.Stat(out + ".partial"); !os.IsNotExist(err) {
		t.Errorf("%s.partial is left (%v)", out, err)
	}
}

// recordSpan is where one record of a dump lies, and what it is.
type recordSpan struct {
	start, end int64
	kind       dump.Kind
	user       string
}

// recordSpans reads a valid dump and returns its records after the header.
func recordSpans(t *testing.T, data []byte) (header int64, spans []recordSpan) {
	t.Helper()
	r, err := dump.NewReader(bytes.NewReader(data), dump.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	header = r.Offset()
	for start := header; ; start = r.Offset() {
		k, err := r.Next()
		if errors.Is(err, io.EOF) {
			return header, spans
		}
		if err != nil {
			t.Fatal(err)
		}
		spans = append(spans, recordSpan{start: start, end: r.Offset(), kind: k, user: r.Store().User})
	}
}

// TestAdminImportRefusals imports bad dumps, and a good one into a store that is not
// empty, into both stores: each exits 1 saying what is wrong and that nothing is kept,
// and leaves the store as it was, without import records, although each failed after
// committing part of the dump.
func TestAdminImportRefusals(t *testing.T) {
	t.Parallel()
	src := newEmbeddedSource(t, 300)
	dir := t.TempDir()
	full := filepath.Join(dir, "full.vssdump")
	admin(t, "export", "--data-dir", src, "--out", full)
	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	header, spans := recordSpans(t, data)
	var aliceEnd, bobBegin, bobEnd int64
	var bobEntries []recordSpan
	for _, s := range spans {
		switch {
		case s.kind == dump.KindStoreEnd && s.user == "alice":
			aliceEnd = s.end
		case s.kind == dump.KindStore && s.user == "bob":
			bobBegin = s.start
		case s.kind == dump.KindEntry && s.user == "bob":
			bobEntries = append(bobEntries, s)
		case s.kind == dump.KindStoreEnd && s.user == "bob":
			bobEnd = s.end
		}
	}
	if len(bobEntries) != 600 {
		t.Fatalf("bob has %d entries in the dump", len(bobEntries))
	}
	bad := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// Truncated in the middle of bob's wallet, after a batch of it.
	truncated := bad("truncated.vssdump", data[:(bobBegin+bobEnd)/2])
	// A byte of bob's 400th value flipped (a value is its entry record's last field).
	flipped := slices.Clone(data)
	flipped[bobEntries[399].end-1] ^= 0x01
	flippedFile := bad("flipped.vssdump", flipped)
	// Format version 2 in the header.
	var rec dumpv1.Record
	size, n := binary.Uvarint(data[len(dump.Magic):])
	if err := proto.Unmarshal(data[len(dump.Magic)+n:header], &rec); err != nil || int64(len(dump.Magic)+n)+int64(size) != header {
		t.Fatalf("the header record: %v", err)
	}
	rec.GetHeader().FormatVersion = 2
	hdr, err := proto.Marshal(&rec)
	if err != nil {
		t.Fatal(err)
	}
	v2 := append(binary.AppendUvarint([]byte(dump.Magic), uint64(len(hdr))), hdr...)
	version := bad("version2.vssdump", append(v2, data[header:]...))
	// After alice's stores, a record that says it is longer than the limit.
	large := binary.AppendUvarint(slices.Clone(data[:aliceEnd]), dump.DefaultMaxRecordBytes+1)
	tooLarge := bad("too-large.vssdump", append(large, make([]byte, 1000)...))

	cluster := pgtest.NewConfiguredCluster(t, pgtest.ClusterOptions{})
	for _, target := range []struct {
		name string
		// flags names the store; url is the PostgreSQL URL or empty for dir.
		flags    []string
		url, dir string
	}{
		{name: "embedded", dir: t.TempDir()},
		{name: "postgresql", url: newPostgresDatabase(t, cluster, "vss")},
	} {
		t.Run(target.name, func(t *testing.T) {
			flags := []string{"--data-dir", target.dir}
			if target.url != "" {
				flags = []string{"--database-url", target.url}
			}
			// The store holds another carol: the full dump's carol is refused.
			carol := filepath.Join(dir, "carol-"+target.name+".vssdump")
			other := newEmbeddedSource(t, 2)
			admin(t, "export", "--user", "alice", "--data-dir", other, "--out", carol)
			admin(t, append([]string{"import", carol, "--user", "carol"}, flags...)...)
			before := checksum(t, flags...)

			for _, tc := range []struct {
				name, file string
				want       []string
			}{
				{"truncated", truncated, []string{"is not a valid dump", "dump: truncated", "Nothing of it is kept: the import removed what it had written (4 stores)"}},
				{"flipped byte", flippedFile, []string{"is not a valid dump", "dump: checksum mismatch", `store "wallet"`, "(4 stores)"}},
				{"format version", version, []string{"is not a dump this server can import", "dump: unsupported format version", "format version 2, this reader knows 1", "nothing was imported"}},
				{"record over the limit", tooLarge, []string{"is not a valid dump", "dump: record too large", "(3 stores)"}},
				{"store not empty", full, []string{`store "wallet" is not empty (user "carol")`, "only into empty stores", "(4 stores)", "admin delete-user", "--abort"}},
			} {
				r := runAdminCmd(t.Context(), nil, append([]string{"import", tc.file}, flags...)...)
				if r.code != 1 || r.stdout != "" {
					t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1", tc.name, r.code, r.stdout, r.stderr)
				}
				for _, w := range tc.want {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("%s: the message %q does not say %q", tc.name, r.stderr, w)
					}
				}
				if got := checksum(t, flags...); got != before {
					t.Errorf("%s: the store's checksum is %s, %s before the import", tc.name, got, before)
				}
				if got := importRecords(t, target.dir, target.url); got != "0 0" {
					t.Errorf("%s: import records and sessions left: %s", tc.name, got)
				}
			}
		})
	}
}

// TestAdminExportImportUsageErrors: a dump of one user needs --user, a dump of every
// user refuses it, and flags of other commands are refused; each is exit code 2 and
// creates no store.
func TestAdminExportImportUsageErrors(t *testing.T) {
	t.Parallel()
	src := newEmbeddedSource(t, 3)
	dir := t.TempDir()
	userDump, allDump := filepath.Join(dir, "alice.vssdump"), filepath.Join(dir, "all.vssdump")
	admin(t, "export", "--user", "alice", "--data-dir", src, "--out", userDump)
	admin(t, "export", "--data-dir", src, "--out", allDump)
	target := filepath.Join(t.TempDir(), "target")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", userDump}, "holds the stores of one user, who is not named in it: give --user"},
		{[]string{"import", allDump, "--user", "alice"}, "holds every user's stores, each naming its user: import it without --user"},
		{[]string{"import", userDump, "--user", "alice", "--abort", "--out", "x"}, "--out does not apply to import"},
		{[]string{"import"}, "unexpected arguments"},
		{[]string{"import", userDump, allDump, "--user", "alice"}, "unexpected arguments"},
		{[]string{"export", "--checksum-only", "--out", "x"}, "--checksum-only writes no dump"},
		{[]string{"export", "--json"}, "--json does not apply to export"},
		{[]string{"export", "extra"}, "unexpected arguments"},
		{[]string{"usage", "--out", "x"}, "--out does not apply to usage"},
		{[]string{"delete-user", "bob", "--user", "bob"}, "--user does not apply to delete-user"},
	} {
		r := runAdminCmd(t.Context(), nil, append(tc.args, "--data-dir", target)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("admin %q: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("the usage errors created %s (%v)", target, err)
	}

	// Failures, not usage errors: exit 1.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", filepath.Join(dir, "missing.vssdump"), "--data-dir", target}, "cannot read the dump"},
		{[]string{"import", src, "--data-dir", target}, "cannot read the dump"}, // a directory
		{[]string{"export", "--user", "nobody", "--data-dir", src}, `user "nobody" stores nothing`},
		{[]string{"export", "--data-dir", target}, "no store at embedded store"},
		{[]string{"import", userDump, "--user", "alice", "--abort", "--data-dir", target}, "no store at embedded store"},
		{[]string{"import", userDump, "--user", "alice", "--database-url", "memory:"}, "the in-memory store keeps nothing"},
	} {
		r := runAdminCmd(t.Context(), nil, tc.args...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("admin %q: exit %d, stderr %q; want exit 1 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("the failed commands created %s (%v)", target, err)
	}
	// Not a dump at all.
	r := runAdminCmd(t.Context(), strings.NewReader("#!/bin/sh\n"), "import", "-", "--data-dir", target)
	if r.code != 1 || !strings.Contains(r.stderr, "the dump on standard input is not a dump this server can import: dump: not a VSS dump") {
		t.Errorf("import of a shell script: exit %d, %q", r.code, r.stderr)
	}
}

// lockTable takes an exclusive lock on table in the database at url, which blocks every
// reader of it until unlock is called.
func lockTable(t *testing.T, url, table string) (unlock func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		_ = tx.Rollback(context.Background())
		_ = conn.Close(context.Background())
	}
}

// waitForFile waits until path exists.
func waitForFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within 30 s", path)
		}
	}
}

// TestAdminExportFiles: an export interrupted while it writes FILE.partial (its
// context is cancelled while it waits for the database, as Ctrl-C does) leaves neither
// FILE nor FILE.partial; --out takes a device such as /dev/null as it is; a directory
// that does not exist is an error.
func TestAdminExportFiles(t *testing.T) {
	t.Parallel()
	src := newEmbeddedSource(t, 20)
	want := checksum(t, "--data-dir", src)
	r := admin(t, "export", "--data-dir", src, "--out", os.DevNull)
	if summarySHA(t, r) != want || !strings.Contains(r.stderr, " to "+os.DevNull+"\n") {
		t.Errorf("export --out %s: %q", os.DevNull, r.stderr)
	}
	r = runAdminCmd(t.Context(), nil, "export", "--data-dir", src, "--out", filepath.Join(t.TempDir(), "missing", "x"))
	if r.code != 1 || !strings.Contains(r.stderr, "cannot write the dump") {
		t.Errorf("export into a missing directory: exit %d, %q", r.code, r.stderr)
	}

	pg := newPostgresDatabase(t, pgtest.NewConfiguredCluster(t, pgtest.ClusterOptions{}), "vss")
	file := filepath.Join(t.TempDir(), "all.vssdump")
	in := filepath.Join(t.TempDir(), "src.vssdump")
	admin(t, "export", "--data-dir", src, "--out", in)
	admin(t, "import", in, "--database-url", pg)
	unlock := lockTable(t, pg, "vss_db")
	defer unlock()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan adminResult, 1)
	go func() { done <- runAdminCmd(ctx, nil, "export", "--database-url", pg, "--out", file) }()
	waitForFile(t, file+".partial")
	cancel()
	r = <-done
	if r.code != 1 || !strings.Contains(r.stderr, "interrupted (") || !strings.Contains(r.stderr, "no dump was written ("+file+".partial was removed)") {
		t.Errorf("interrupted export: exit %d, %q", r.code, r.stderr)
	}
	for _, p := range []string{file, file + ".partial"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("the interrupted export left %s (%v)", p, err)
		}
	}
	unlock()
	if got := summarySHA(t, admin(t, "export", "--database-url", pg, "--out", file)); got != want {
		t.Errorf("export after the interruption: %s, want %s", got, want)
	}
}
