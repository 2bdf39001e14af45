package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/vsstest"
	"github.com/govss/vss/dump"
	dumpv1 "github.com/govss/vss/gen/vss/dump/v1"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// TestVSSHTTPExportImport exports from a server through its VSS HTTP API alone (list and
// get, as from the reference server), and imports the dump into another through its
// VSS HTTP API alone (puts of new keys), then again to resume, and into a store that is
// not empty.
func TestVSSHTTPExportImport(t *testing.T) {
	t.Parallel()
	keyHex, key := newKeyHex(t)
	src := vsstest.Start(t, vsstest.Config{})
	srcAPI := vssclient.New(src.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	fillWallet(t, srcAPI)
	c := newCLI(t, src.URL+"/vss", "VSSCTL_PRIVATE_KEY", keyHex)
	path := filepath.Join(t.TempDir(), "wallet.vssdump")

	args := []string{"export", "--out", path, "--store-id", "wallet", "--store-id", "", "--store-id", "notes", "--store-id", "missing", "--store-id", "wallet"}
	r := c.run(args...)
	if r.code != 0 || r.out != "" || !strings.Contains(r.err, "exported 3 stores, 114 entries") ||
		!strings.Contains(r.err, `warning: store "missing" holds nothing`) || !strings.Contains(r.err, "not in one snapshot") {
		t.Fatalf("vssctl %q: %v", args, r)
	}
	if _, err := os.Stat(path + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the partial file is left: %v", err)
	}
	header, stores, sum := readDumpFile(t, path)
	if header.Snapshot || header.GlobalVersions || !header.Versions || !header.ListingOrder || header.Scope != dump.ScopeUser || !strings.HasPrefix(header.Producer, "vssctl ") {
		t.Fatalf("header %+v: want no snapshot and no global versions, but versions and the listing order", header)
	}
	if !strings.Contains(r.err, "SHA-256 "+sha(sum.SHA256)) {
		t.Fatalf("the summary %q does not give the trailer's SHA-256 %s", r.err, sha(sum.SHA256))
	}
	var ids []string
	for i, s := range stores {
		ids = append(ids, s.store.ID)
		if want := readStore(t, srcAPI, s.store.ID); !sameContent(stateOf(s), want, true) {
			t.Errorf("store %q in the dump: %+v, the server holds %+v", s.store.ID, stateOf(s), want)
		}
		if i == 2 && (!s.store.HasGlobalVersion || s.store.GlobalVersion != 2) || i != 2 && s.store.HasGlobalVersion {
			t.Errorf("store %q: global version %d, present %v", s.store.ID, s.store.GlobalVersion, s.store.HasGlobalVersion)
		}
	}
	if strings.Join(ids, ",") != strings.Join(walletStores, ",") {
		t.Fatalf("stores %q, want %q in dump order", ids, walletStores)
	}
	if keys := stateOf(stores[2]).keys; strings.Join(keys, ",") != "a,c,b" {
		t.Fatalf("wallet's keys %q, want creation order a,c,b", keys)
	}

	// --json, to standard output; a dump to standard output.
	var summary struct {
		Stores, Entries, Bytes int64
		SHA256                 string
	}
	out := c.ok("export", "--json", "--out", path+"2", "--store-id", "wallet")
	if err := json.Unmarshal([]byte(out), &summary); err != nil || summary.Stores != 1 || summary.Entries != 3 || len(summary.SHA256) != 64 {
		t.Fatalf("export --json: %q, %v", out, err)
	}
	// The same content (the header's time, and so its size, differs from export to export).
	if r := c.run("export", "--store-id", "wallet"); r.code != 0 || !strings.HasPrefix(r.out, dump.Magic) || !strings.Contains(r.err, "SHA-256 "+summary.SHA256) {
		t.Fatalf("export to standard output: exit %d, %d bytes, stderr %q, want SHA-256 %s", r.code, len(r.out), r.err, summary.SHA256)
	}
	c.fails(exitUsage, "name each store to move with --store-id", "export", "--out", path+"3")
	c.fails(exitUsage, "give --out FILE", "export", "--json", "--store-id", "wallet")
	c.fails(exitUsage, "export:", "export", "--out", filepath.Join(t.TempDir(), "no", "such", "dir"), "--store-id", "wallet")

	// Into a server through its VSS HTTP API: refused without --allow-new-versions.
	dst := vsstest.Start(t, vsstest.Config{})
	dstAPI := vssclient.New(dst.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	d := newCLI(t, dst.URL+"/vss", "VSSCTL_PRIVATE_KEY", keyHex)
	d.fails(exitUsage, "--allow-new-versions", "import", path)
	d.fails(exitUsage, "keeps no record of an import", "import", "--abort", "--allow-new-versions", path)
	if got := readStore(t, dstAPI, "wallet"); len(got.keys) != 0 || got.global != 0 {
		t.Fatalf("the refused import wrote %+v", got)
	}
	r = d.run("import", "--allow-new-versions", path)
	if r.code != 0 || !strings.Contains(r.err, "imported 3 stores, 114 entries") || !strings.Contains(r.err, "114 keys written, 0 already there") ||
		!strings.Contains(r.err, "read back") || !strings.Contains(r.err, "new version") {
		t.Fatalf("import --allow-new-versions: %v", r)
	}
	for _, s := range stores {
		got, want := readStore(t, dstAPI, s.store.ID), stateOf(s)
		if !sameContent(got, want, false) || got.global != want.global {
			t.Errorf("store %q after the import: %+v, want %+v", s.store.ID, got, want)
		}
		for i, v := range got.versions {
			if v != 1 {
				t.Errorf("store %q, key %q: version %d, want 1 (new)", s.store.ID, got.keys[i], v)
			}
		}
	}
	// Again: every key is there, so nothing is written.
	if r := d.run("import", "--allow-new-versions", path); r.code != 0 || !strings.Contains(r.err, "0 keys written, 114 already there") {
		t.Fatalf("import again: %v", r)
	}
	// A store holding other keys is refused, and nothing is written there.
	other := vsstest.Start(t, vsstest.Config{})
	otherAPI := vssclient.New(other.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	if _, err := otherAPI.PutObjects(context.Background(), &vssv1.PutObjectRequest{StoreId: "", TransactionItems: []*vssv1.KeyValue{{Key: "mine", Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	newCLI(t, other.URL+"/vss", "VSSCTL_PRIVATE_KEY", keyHex).fails(exitPrecondition, `store "" on the target is not empty`, "import", "--allow-new-versions", path)
	if got := readStore(t, otherAPI, ""); strings.Join(got.keys, ",") != "mine" {
		t.Fatalf("the refused store holds %q", got.keys)
	}
}

// TestVSSHTTPExportKeyDeleted deletes a key between the listing and its read: the
// export skips it with a warning, and the dump holds the other keys.
func TestVSSHTTPExportKeyDeleted(t *testing.T) {
	t.Parallel()
	var api *vssclient.Client
	var once sync.Once
	srv := vsstest.Start(t, vsstest.Config{NoAuth: true, Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var req vssv1.GetObjectRequest
			if r.URL.Path == "/vss/getObject" && proto.Unmarshal(body, &req) == nil && req.GetKey() == "c" {
				once.Do(func() {
					if _, err := api.DeleteObject(r.Context(), &vssv1.DeleteObjectRequest{StoreId: "wallet", KeyValue: &vssv1.KeyValue{Key: "c", Version: -1}}); err != nil {
						t.Error(err)
					}
				})
			}
			h.ServeHTTP(w, r)
		})
	}})
	api = vssclient.New(srv.URL)
	fillWallet(t, api)
	path := filepath.Join(t.TempDir(), "wallet.vssdump")
	r := newCLI(t, srv.URL+"/vss").run("export", "--out", path, "--store-id", "wallet")
	if r.code != 0 || !strings.Contains(r.err, `warning: store "wallet": key "c" was deleted after it was listed`) || !strings.Contains(r.err, "2 entries") {
		t.Fatalf("export: %v", r)
	}
	if _, stores, _ := readDumpFile(t, path); strings.Join(stateOf(stores[0]).keys, ",") != "a,b" {
		t.Fatalf("the dump holds %q, want a,b", stateOf(stores[0]).keys)
	}
}

// TestVSSHTTPMigrate moves the data from one server to another through their VSS HTTP
// APIs alone, to another user with --to-private-key, and resumes after an interruption.
func TestVSSHTTPMigrate(t *testing.T) {
	t.Parallel()
	keyHex, key := newKeyHex(t)
	toHex, toKey := newKeyHex(t)
	src, dst := vsstest.Start(t, vsstest.Config{}), vsstest.Start(t, vsstest.Config{})
	srcAPI := vssclient.New(src.URL, vssclient.WithHeaders(vssclient.Signature(key)))
	dstAPI := vssclient.New(dst.URL, vssclient.WithHeaders(vssclient.Signature(toKey)))
	fillWallet(t, srcAPI)
	c := newCLI(t, "", "VSSCTL_PRIVATE_KEY", keyHex)
	args := []string{"migrate", "--from", src.URL + "/vss", "--to", dst.URL + "/vss", "--to-private-key", toHex,
		"--store-id", "wallet", "--store-id", "notes", "--store-id", ""}

	c.fails(exitUsage, "--allow-new-versions", args...)
	// A part of the data is there already, as an interrupted run leaves it: the first
	// keys of "notes".
	want := readStore(t, srcAPI, "notes")
	var first []*vssv1.KeyValue
	for i := range 40 {
		first = append(first, &vssv1.KeyValue{Key: want.keys[i], Value: want.values[i]})
	}
	if _, err := dstAPI.PutObjects(context.Background(), &vssv1.PutObjectRequest{StoreId: "notes", TransactionItems: first}); err != nil {
		t.Fatal(err)
	}
	r := c.run(append(args, "--allow-new-versions")...)
	if r.code != 0 || !strings.Contains(r.err, "moved 3 stores, 114 entries") || !strings.Contains(r.err, "74 keys written, 40 already there") ||
		!strings.Contains(r.err, `store "wallet": 3 entries`) {
		t.Fatalf("migrate: %v", r)
	}
	for _, id := range walletStores {
		got, want := readStore(t, dstAPI, id), readStore(t, srcAPI, id)
		if !sameContent(got, want, false) || got.global != want.global {
			t.Errorf("store %q moved: %+v, want %+v", id, got, want)
		}
	}
	// The source's user has nothing on the target.
	if got := readStore(t, vssclient.New(dst.URL, vssclient.WithHeaders(vssclient.Signature(key))), "wallet"); len(got.keys) != 0 {
		t.Fatalf("the source's user holds %q on the target", got.keys)
	}
	c.fails(exitUsage, "needs --from URL", "migrate", "--from", src.URL)
	c.fails(exitUsage, "same server", "migrate", "--from", src.URL, "--to", src.URL+"/")
	c.fails(exitUsage, "migrate does not take --server", "migrate", "--server", src.URL, "--from", src.URL, "--to", dst.URL)
	c.fails(exitUsage, "name each store", "migrate", "--from", src.URL+"/vss", "--to", dst.URL+"/vss", "--allow-new-versions")
}

// badDumps are dumps that a reader refuses, each with the sentinel error it matches,
// made from good, a good dump whose second store holds the value "flip me".
func badDumps(t *testing.T, good []byte) map[string]struct {
	data []byte
	err  error
} {
	t.Helper()
	flipped := bytes.Clone(good)
	i := bytes.Index(flipped, []byte("flip me"))
	if i < 0 {
		t.Fatal("no value to flip")
	}
	flipped[i] ^= 0x20
	// A header of format version 2.
	hdr, err := proto.Marshal(&dumpv1.Record{Kind: &dumpv1.Record_Header{Header: &dumpv1.Header{FormatVersion: 2, Scope: dumpv1.Scope_SCOPE_USER}}})
	if err != nil {
		t.Fatal(err)
	}
	version := binary.AppendUvarint([]byte(dump.Magic), uint64(len(hdr)))
	return map[string]struct {
		data []byte
		err  error
	}{
		"truncated":       {good[:len(good)-7], dump.ErrTruncated},
		"flipped byte":    {flipped, dump.ErrChecksum},
		"format version":  {append(version, hdr...), dump.ErrVersion},
		"not a dump":      {[]byte("PK\x03\x04 a zip file"), dump.ErrNotDump},
		"data after it":   {append(bytes.Clone(good), 0), dump.ErrOrder},
		"empty file":      {nil, dump.ErrTruncated},
		"magic cut short": {[]byte(dump.Magic[:5]), dump.ErrTruncated},
	}
}

// goodDump writes a dump of two stores, "a" with 3 keys and "b" with 2, whose last
// value is "flip me".
func goodDump(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := dump.NewWriter(&buf, dump.Header{Producer: "test", Created: time.Now(), Scope: dump.ScopeUser, Snapshot: true, ListingOrder: true, Versions: true, GlobalVersions: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		id     string
		values []string
	}{{"a", []string{"one", "two", "three"}}, {"b", []string{"four", "flip me"}}} {
		if err := w.BeginStore(dump.Store{ID: s.id, GlobalVersion: 3, HasGlobalVersion: true}); err != nil {
			t.Fatal(err)
		}
		for i, v := range s.values {
			if err := w.Entry(dump.Entry{Key: s.id + string(rune('0'+i)), Version: int64(i + 4), Value: []byte(v)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.EndStore(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadDumpRefusesBadDumps reads each bad dump through readDump, which import,
// export and migrate all read through: each is an invalid dump (exit code 5) and says
// why.
func TestReadDumpRefusesBadDumps(t *testing.T) {
	t.Parallel()
	good := goodDump(t)
	got, err := readDump(bytes.NewReader(good), nil)
	if err != nil || got.sum.Stores != 2 || got.sum.Entries != 5 || got.bytes != int64(len(good)) || len(got.stores) != 2 {
		t.Fatalf("the good dump: %+v, %v", got, err)
	}
	for name, bad := range badDumps(t, good) {
		_, err := readDump(bytes.NewReader(bad.data), nil)
		if exitCode(err) != exitInvalid || !errors.Is(err, bad.err) || !strings.Contains(err.Error(), "nothing of it is kept") {
			t.Errorf("%s: %v (exit code %d), want %v and exit code %d", name, err, exitCode(err), bad.err, exitInvalid)
		}
	}
}

// TestVSSHTTPImportRefusesBadDumps imports each bad dump into a server through its VSS
// HTTP API: a file is checked whole before anything is written; a dump on standard
// input, found bad after some of its keys were written, is undone.
func TestVSSHTTPImportRefusesBadDumps(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{NoAuth: true})
	api := vssclient.New(srv.URL)
	c := newCLI(t, srv.URL+"/vss")
	dir := t.TempDir()
	good := goodDump(t)
	empty := func(t *testing.T, what string) {
		t.Helper()
		for _, id := range []string{"a", "b"} {
			if got := readStore(t, api, id); len(got.keys) != 0 || got.global != 0 {
				t.Fatalf("%s: store %q holds %+v", what, id, got)
			}
		}
	}
	for name, bad := range badDumps(t, good) {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, bad.data, 0o600); err != nil {
			t.Fatal(err)
		}
		r := c.run("import", "--allow-new-versions", path)
		if r.code != exitInvalid || !strings.Contains(r.err, "the dump is not valid") || !strings.Contains(r.err, bad.err.Error()) {
			t.Errorf("import of the %s file: %v", name, r)
		}
		empty(t, name+" file")
	}
	// From standard input, the flipped byte is found at the end of store "b", after the
	// keys of store "a" were written: they are removed.
	flipped := badDumps(t, good)["flipped byte"].data
	r := c.runIn(string(flipped), "import", "--allow-new-versions", "-")
	if r.code != exitInvalid || !strings.Contains(r.err, "checksum mismatch") || !strings.Contains(r.err, "removed the 3 keys this run created") {
		t.Fatalf("import of the flipped dump from standard input: %v", r)
	}
	empty(t, "flipped dump from standard input")
	if r := c.runIn(string(good), "import", "--allow-new-versions", "-"); r.code != 0 || !regexp.MustCompile(`5 keys written`).MatchString(r.err) {
		t.Fatalf("import of the good dump from standard input: %v", r)
	}
	if got := readStore(t, api, "b"); strings.Join(got.keys, ",") != "b0,b1" || got.global != 3 {
		t.Fatalf("store b after the good import: %+v", got)
	}
}
