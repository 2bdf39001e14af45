package vssclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"connectrpc.com/connect"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/vsstest"
	"github.com/govss/vss/dump"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/server"
)

// fillDump writes two stores through c: "big", 40 values of 2 KiB (more than a few
// chunks of 4 KiB), and "small", with a global version.
func fillDump(t *testing.T, c *vssclient.Client) {
	t.Helper()
	var items []*vssv1.KeyValue
	for i := range 40 {
		items = append(items, &vssv1.KeyValue{Key: fmt.Sprintf("big-%02d", i), Value: bytes.Repeat([]byte{byte(i)}, 2<<10)})
	}
	put(t, c, "big", items...)
	zero := int64(0)
	if _, err := c.PutObjects(testCtx(t), &vssv1.PutObjectRequest{StoreId: "small", GlobalVersion: &zero,
		TransactionItems: []*vssv1.KeyValue{kv("a", 0, "1"), kv("b", 0, "2")}}); err != nil {
		t.Fatal(err)
	}
}

// export returns the dump of c's user and its summary.
func export(t *testing.T, c *vssclient.Client) ([]byte, vssclient.ExportResult) {
	t.Helper()
	var buf bytes.Buffer
	res, err := c.ExportData(testCtx(t), &buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), res
}

// stream hides every method of r but Read, so that ImportData holds what it reads.
type stream struct{ r io.Reader }

func (s stream) Read(p []byte) (int, error) { return s.r.Read(p) }

// TestDumpRoundTrip exports a user's stores and imports them as two other users in
// chunks of 4 KiB, from a file-like source and from a stream: each export of the targets
// has the source's SHA-256, and each store its checksum.
func TestDumpRoundTrip(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	alice := device(srv, "dump-alice", "phone")
	fillDump(t, alice)
	var exported []vssclient.Progress
	var buf bytes.Buffer
	src, err := alice.ExportData(testCtx(t), &buf, vssclient.WithExportProgress(func(p vssclient.Progress) { exported = append(exported, p) }))
	if err != nil {
		t.Fatal(err)
	}
	if src.Sum.Stores != 2 || src.Sum.Entries != 42 || src.Bytes != int64(buf.Len()) || len(src.StoreSums) != 2 || src.Header.Scope != dump.ScopeUser {
		t.Fatalf("export: %+v, %d bytes", src.DumpSummary, buf.Len())
	}
	if last := exported[len(exported)-1]; last.Bytes != src.Bytes || last.Stores != 2 || last.Entries != 42 {
		t.Fatalf("last export progress %+v", last)
	}
	for name, in := range map[string]io.Reader{"file": bytes.NewReader(buf.Bytes()), "stream": stream{bytes.NewReader(buf.Bytes())}} {
		t.Run(name, func(t *testing.T) {
			bob := device(srv, "dump-bob-"+name, "laptop")
			var answers []vssclient.Progress
			res, err := bob.ImportData(testCtx(t), in, "round-trip", vssclient.ImportOptions{ChunkSize: vssclient.MinImportChunkSize,
				Progress: func(p vssclient.Progress) { answers = append(answers, p) }})
			if err != nil {
				t.Fatal(err)
			}
			if res.Sum != src.Sum || res.ImportID != "round-trip" || len(answers) < 10 {
				t.Fatalf("import: %+v after %d answers; want the sum %+v after many chunks", res, len(answers), src.Sum)
			}
			wantTotal := int64(-1)
			if name == "file" {
				wantTotal = src.Bytes
			}
			if last := answers[len(answers)-1]; last.Bytes != src.Bytes || last.Total != wantTotal || last.Entries != 42 {
				t.Fatalf("last import progress %+v", last)
			}
			_, again := export(t, bob)
			if again.Sum.SHA256 != src.Sum.SHA256 {
				t.Fatalf("the target's export has SHA-256 %x, the source's %x", again.Sum.SHA256, src.Sum.SHA256)
			}
			for i, s := range again.StoreSums {
				if s != src.StoreSums[i] {
					t.Errorf("store %d: %+v, want %+v", i, s, src.StoreSums[i])
				}
			}
		})
	}
}

// TestImportResumes cancels an import after a few chunks and runs it again with Resume:
// the server is asked where the import stands and only the rest is sent, and the
// import ends with the source's SHA-256. Importing again under another id is refused,
// the stores being no longer empty.
func TestImportResumes(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	from := device(srv, "resume-src", "a")
	fillDump(t, from)
	data, src := export(t, from)
	dst := device(srv, "resume-dst", "b")
	opts := vssclient.ImportOptions{ChunkSize: vssclient.MinImportChunkSize, Resume: true}

	ctx, cancel := context.WithCancel(testCtx(t))
	var answers int
	opts.Progress = func(vssclient.Progress) {
		if answers++; answers == 5 {
			cancel()
		}
	}
	if _, err := dst.ImportData(ctx, bytes.NewReader(data), "resume", opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("the canceled import: %v", err)
	}
	partial, err := dst.ListAll(testCtx(t), &vssv1.ListKeyVersionsRequest{StoreId: "big"})
	if err != nil || len(partial.GetKeyVersions()) == 0 || len(partial.GetKeyVersions()) >= 40 {
		t.Fatalf("after the cancel the target holds %d keys of store big, %v; want some", len(partial.GetKeyVersions()), err)
	}
	if _, err := dst.ImportData(testCtx(t), bytes.NewReader(data), "another", vssclient.ImportOptions{}); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("an import under another id into the half-imported stores: %v", err)
	}

	var first []vssclient.Progress
	opts.Progress = func(p vssclient.Progress) { first = append(first, p) }
	res, err := dst.ImportData(testCtx(t), bytes.NewReader(data), "resume", opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sum != src.Sum {
		t.Fatalf("the resumed import: %+v, want %+v", res.Sum, src.Sum)
	}
	// The question's answer: where the first run stopped, not the beginning.
	if len(first) == 0 || first[0].Bytes == 0 {
		t.Fatalf("the resumed import began at %+v; want where the first run stopped", first)
	}
	if _, again := export(t, dst); again.Sum.SHA256 != src.Sum.SHA256 {
		t.Fatalf("the target's export has SHA-256 %x, the source's %x", again.Sum.SHA256, src.Sum.SHA256)
	}
}

// TestImportRefusesBadDump imports a dump with one byte of a value changed: the client
// finds the store's checksum wrong, gives the import up, and the server keeps nothing
// of it. A dump of a whole database is refused before anything is sent.
func TestImportRefusesBadDump(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	src := device(srv, "bad-src", "a")
	fillDump(t, src)
	data, _ := export(t, src)
	bad := bytes.Clone(data)
	i := bytes.Index(bad, bytes.Repeat([]byte{30}, 2<<10)) // the value of big-30
	bad[i+100] ^= 1
	dst := device(srv, "bad-dst", "b")
	_, err := dst.ImportData(testCtx(t), bytes.NewReader(bad), "bad", vssclient.ImportOptions{ChunkSize: vssclient.MinImportChunkSize})
	var fe *dump.FormatError
	if !errors.As(err, &fe) || !errors.Is(err, dump.ErrChecksum) {
		t.Fatalf("import of a changed dump: %v; want a checksum error", err)
	}
	for _, id := range []string{"big", "small"} {
		if got, err := dst.ListAll(testCtx(t), &vssv1.ListKeyVersionsRequest{StoreId: id}); err != nil || len(got.GetKeyVersions()) != 0 {
			t.Fatalf("after the bad dump, store %q holds %d keys, %v", id, len(got.GetKeyVersions()), err)
		}
	}

	var db bytes.Buffer
	w, err := dump.NewWriter(&db, dump.Header{Producer: "test", Scope: dump.ScopeDatabase})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.ImportData(testCtx(t), &db, "database", vssclient.ImportOptions{}); err == nil || !bytes.Contains([]byte(err.Error()), []byte("vss-server admin import")) {
		t.Fatalf("import of a database's dump: %v", err)
	}
}

// TestDelete reports what DeleteStore and DeleteAllData would delete, deletes nothing
// on a dry run, then deletes.
func TestDelete(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	c := device(srv, "delete", "a")
	fillDump(t, c)
	ctx := testCtx(t)

	dry, err := c.DeleteStore(ctx, "small", true)
	if err != nil || dry.GetKeys() != 3 || dry.GetDeleted() || dry.GetBytes() == 0 {
		t.Fatalf("DeleteStore dry run: %v, %v; want 3 keys (the global version included), not deleted", dry, err)
	}
	if got, _ := c.ListAll(ctx, &vssv1.ListKeyVersionsRequest{StoreId: "small"}); len(got.GetKeyVersions()) != 2 {
		t.Fatalf("the dry run deleted keys: %v", got)
	}
	if del, err := c.DeleteStore(ctx, "small", false); err != nil || del.GetKeys() != 3 || !del.GetDeleted() {
		t.Fatalf("DeleteStore: %v, %v", del, err)
	}
	if got, _ := c.ListAll(ctx, &vssv1.ListKeyVersionsRequest{StoreId: "small"}); len(got.GetKeyVersions()) != 0 {
		t.Fatalf("store small still holds %v", got)
	}

	all, err := c.DeleteAllData(ctx, true)
	if err != nil || all.GetStores() != 1 || all.GetKeys() != 40 || all.GetDeleted() {
		t.Fatalf("DeleteAllData dry run: %v, %v; want store big's 40 keys, not deleted", all, err)
	}
	if all, err := c.DeleteAllData(ctx, false); err != nil || all.GetStores() != 1 || !all.GetDeleted() {
		t.Fatalf("DeleteAllData: %v, %v", all, err)
	}
	if _, res := export(t, c); res.Sum.Stores != 0 {
		t.Fatalf("after DeleteAllData the user has %d stores", res.Sum.Stores)
	}
}

// TestConfirmPhrases keeps the client's confirm phrases the server's.
func TestConfirmPhrases(t *testing.T) {
	if vssclient.DeleteStoreConfirm != server.DeleteStoreConfirm || vssclient.DeleteAllDataConfirm != server.DeleteAllDataConfirm {
		t.Fatalf("the client's confirm phrases %q, %q; the server's %q, %q", vssclient.DeleteStoreConfirm, vssclient.DeleteAllDataConfirm,
			server.DeleteStoreConfirm, server.DeleteAllDataConfirm)
	}
}
