package dumptest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/govss/vss/dump"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/transfer"
)

// Porter is a store under test for imports.
type Porter interface {
	Exporter
	storage.Importer
	storage.QuotaStore
	storage.Deleter
	storage.Feed
	storage.Leases
}

// importBatch is how many entries the checks import per transaction.
const importBatch = 7

// Write returns r as a SCOPE_USER dump.
func Write(t *testing.T, r *Recorder) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := dump.NewWriter(&buf, dump.Header{Producer: "dumptest", Created: time.Unix(1700000000, 0), Scope: dump.ScopeUser,
		Snapshot: true, ListingOrder: true, Versions: true, GlobalVersions: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range r.Stores {
		if err := w.BeginStore(dump.Store{ID: st.ID, GlobalVersion: st.GlobalVersion, HasGlobalVersion: st.HasGlobalVersion}); err != nil {
			t.Fatal(err)
		}
		for _, kv := range r.Entries[i] {
			if err := w.Entry(dump.Entry{Key: kv.Key, Version: kv.Version, Value: kv.Value}); err != nil {
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

// Import imports r, as a dump, into user's stores under importID through
// transfer.Import in batches of importBatch entries, and interrupts it (cancels its
// context) after stopAfter batches when stopAfter > 0. It returns the first error; an
// interruption is not one.
func Import(t *testing.T, s Porter, user, importID string, r *Recorder, stopAfter int) error {
	t.Helper()
	rd, err := dump.NewReader(bytes.NewReader(Write(t, r)), dump.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	batches, written := 0, uint64(0)
	_, err = transfer.Import(ctx, s, rd, transfer.ImportOptions{User: user, ImportID: importID, BatchEntries: importBatch,
		Progress: func(res transfer.Result) {
			if res.Written == written {
				return // a store ended
			}
			if written, batches = res.Written, batches+1; batches == stopAfter {
				cancel()
			}
		}})
	if stopAfter > 0 && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// listing returns the keys of a store as List pages them, newest first, and its
// global version.
func listing(t *testing.T, s storage.Store, user, storeID string) ([]string, int64) {
	t.Helper()
	var keys []string
	before, gv := storage.ListStart, int64(0)
	for {
		page, err := s.List(t.Context(), user, storage.ListRequest{StoreID: storeID, Before: before, Limit: 5, WithGlobalVersion: true})
		if err != nil {
			t.Fatal(err)
		}
		gv = page.GlobalVersion
		for _, k := range page.Keys {
			keys = append(keys, k.Key)
		}
		if len(page.Keys) < 5 {
			return keys, gv
		}
		before = page.Keys[len(page.Keys)-1].SortOrder
	}
}

// checkSame fails unless user b's data exports and lists as user a's does.
func checkSame(t *testing.T, s Porter, a, b string) {
	t.Helper()
	ra, rb := Export(t, s, a), Export(t, s, b)
	if len(ra.Stores) != len(rb.Stores) || !slices.Equal(ra.Stores, rb.Stores) {
		t.Fatalf("stores of %s %+v, of %s %+v", b, rb.Stores, a, ra.Stores)
	}
	for i, st := range ra.Stores {
		CheckEntries(t, st.ID, rb.Entries[i], ra.Entries[i])
		ka, gva := listing(t, s, a, st.ID)
		kb, gvb := listing(t, s, b, st.ID)
		if !slices.Equal(ka, kb) || gva != gvb {
			t.Errorf("store %q lists %v (global version %d), want %v (%d)", st.ID, kb, gvb, ka, gva)
		}
	}
}

// CheckImport imports an export of the data CheckExport writes into another user:
// entries, versions, global versions and listing order come out identical; an import
// into a store that holds data, or belongs to another import, is refused with
// storage.ErrNotEmpty; an interrupted import resumes where it stopped; a batch at the
// wrong position is refused with storage.ErrConflict.
func CheckImport(t *testing.T, s Porter) {
	t.Helper()
	ctx := t.Context()
	CheckExport(t, s)
	src := Export(t, s, "alice")

	if err := Import(t, s, "dave", "dump-1", src, 0); err != nil {
		t.Fatalf("import: %v", err)
	}
	checkSame(t, s, "alice", "dave")
	if err := Import(t, s, "dave", "dump-1", src, 0); !errors.Is(err, storage.ErrNotEmpty) {
		t.Errorf("importing again after the import finished: %v, want ErrNotEmpty", err)
	}

	// Interrupted after 3 batches (inside the store "wallet"), then resumed.
	if err := Import(t, s, "erin", "dump-2", src, 3); err != nil {
		t.Fatalf("interrupted import: %v", err)
	}
	if err := Import(t, s, "erin", "other-dump", src, 0); !errors.Is(err, storage.ErrNotEmpty) {
		t.Errorf("another import into stores being imported: %v, want ErrNotEmpty", err)
	}
	last := len(src.Stores) - 1
	if err := s.ImportEntries(ctx, "erin", "dump-2", src.Stores[last].ID, 0, src.Entries[last][:1]); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("a batch at the wrong position: %v, want ErrConflict", err)
	}
	if err := Import(t, s, "erin", "dump-2", src, 0); err != nil {
		t.Fatalf("resumed import: %v", err)
	}
	checkSame(t, s, "alice", "erin")

	// A store with a key is refused, nothing of it is written, and the stores imported
	// before it are removed again.
	put(t, s, "frank", storage.PutRequest{StoreID: "wallet", Puts: []storage.KeyValue{{Key: "mine", Version: -1}}})
	var ne *storage.NotEmptyError
	if err := Import(t, s, "frank", "dump-3", src, 0); !errors.As(err, &ne) || ne.StoreID != "wallet" {
		t.Errorf("import into a store that is not empty: %v, want a NotEmptyError of wallet", err)
	}
	if r := Export(t, s, "frank"); len(r.Stores) != 1 || r.Stores[0].ID != "wallet" || len(r.Entries[0]) != 1 {
		t.Errorf("after the refused import: %+v %+v", r.Stores, r.Entries)
	}
}

// CheckAbortAndDelete checks that an import given up, a deleted store and a deleted
// user leave nothing behind: no row, no import record or session, no recorded change,
// no lease in force, and a usage counted again from what remains.
func CheckAbortAndDelete(t *testing.T, s Porter) {
	t.Helper()
	ctx := t.Context()
	CheckExport(t, s)
	src := Export(t, s, "alice")
	if err := s.SetQuota(ctx, storage.Quota{MaxKeys: 1000}); err != nil {
		t.Fatal(err)
	}

	// An interrupted import, with a session, given up.
	if err := Import(t, s, "gina", "dump-4", src, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveImportSession(ctx, "gina", "dump-4", storage.ImportSession{Offset: 99, Checkpoint: []byte("cp")}); err != nil {
		t.Fatal(err)
	}
	if sess, ok, err := s.ImportSession(ctx, "gina", "dump-4"); err != nil || !ok || sess.Offset != 99 || string(sess.Checkpoint) != "cp" {
		t.Fatalf("session: %+v %v %v", sess, ok, err)
	}
	if _, ok, err := s.ImportSession(ctx, "alice", "dump-4"); err != nil || ok {
		t.Fatalf("another user's session: %v %v", ok, err)
	}
	n, err := s.AbortImport(ctx, "gina", "dump-4")
	if err != nil || n == 0 {
		t.Fatalf("abort: %d stores, %v", n, err)
	}
	if r := Export(t, s, "gina"); len(r.Stores) != 0 {
		t.Errorf("stores left by the import given up: %+v", r.Stores)
	}
	if _, ok, _ := s.ImportSession(ctx, "gina", "dump-4"); ok {
		t.Error("the session of the import given up is still there")
	}
	if err := Import(t, s, "gina", "dump-4", src, 0); err != nil {
		t.Fatalf("importing again after giving up: %v", err)
	}
	checkSame(t, s, "alice", "gina")

	// A followed store with a lease, deleted.
	st := src.Stores[len(src.Stores)-1].ID
	head, err := s.Changes(ctx, "gina", storage.ChangesRequest{StoreID: st, HeadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "gina", storage.PutRequest{StoreID: st, Puts: []storage.KeyValue{{Key: "after-follow", Version: 0}}})
	page, err := s.Changes(ctx, "gina", storage.ChangesRequest{StoreID: st, After: head.Head, Limit: 10})
	if err != nil || len(page.Changes) != 1 {
		t.Fatalf("the followed store's changes: %+v %v", page, err)
	}
	if _, err := s.AcquireLease(ctx, "gina", st, "writer", "phone", time.Minute); err != nil {
		t.Fatal(err)
	}
	before, err := s.StoreStats(ctx, "gina", st)
	if err != nil || before.Keys == 0 {
		t.Fatalf("stats: %+v %v", before, err)
	}
	got, err := s.DeleteStore(ctx, "gina", st)
	if err != nil || got != before {
		t.Fatalf("delete store: %+v %v, want %+v", got, err, before)
	}
	if after, err := s.StoreStats(ctx, "gina", st); err != nil || after != (storage.StoreStats{}) {
		t.Errorf("after delete: %+v %v", after, err)
	}
	if _, err := s.Changes(ctx, "gina", storage.ChangesRequest{StoreID: st, After: page.Head, Limit: 10}); !errors.Is(err, storage.ErrCursorExpired) {
		t.Errorf("a cursor from before the delete: %v, want ErrCursorExpired", err)
	}
	if l, err := s.GetLease(ctx, "gina", st, "writer"); err != nil || l.Held {
		t.Errorf("lease after delete: %+v %v", l, err)
	}
	usage, err := s.Usage(ctx, "gina")
	if err != nil {
		t.Fatal(err)
	}
	var keys int64
	for _, r := range Export(t, s, "gina").Entries {
		keys += int64(len(r))
	}
	if len(usage) != 1 || usage[0].Keys < keys {
		t.Errorf("usage after delete: %+v, %d entries remain", usage, keys)
	}
	// Every other store is intact, and a new import of the deleted store is accepted.
	if r := Export(t, s, "gina"); len(r.Stores) != len(src.Stores)-1 {
		t.Errorf("stores after delete: %+v", r.Stores)
	}

	// The whole user, with an import in progress.
	if err := Import(t, s, "gina", "dump-5", &Recorder{Stores: src.Stores[len(src.Stores)-1:], Entries: src.Entries[len(src.Entries)-1:]}, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteUser(ctx, "gina"); err != nil {
		t.Fatal(err)
	}
	if r := Export(t, s, "gina"); len(r.Stores) != 0 {
		t.Errorf("stores after deleting the user: %+v", r.Stores)
	}
	if u, err := s.Usage(ctx, "gina"); err != nil || len(u) != 0 {
		t.Errorf("usage after deleting the user: %+v %v", u, err)
	}
	if n, err := s.AbortImport(ctx, "gina", "dump-5"); err != nil || n != 0 {
		t.Errorf("the deleted user's import still has %d stores: %v", n, err)
	}
}

// CheckImportQuota imports under a key quota: the import counts against it like writes
// do, so a dump that does not fit is refused at the batch that goes over, and the usage
// then refuses a write that goes over too.
func CheckImportQuota(t *testing.T, s Porter) {
	t.Helper()
	ctx := t.Context()
	var kvs []storage.KeyValue
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		kvs = append(kvs, storage.KeyValue{Key: k, Version: 3, Value: []byte("v")})
	}
	src := &Recorder{Stores: []storage.ExportStore{{ID: "w", GlobalVersion: 4, HasGlobalVersion: true}}, Entries: [][]storage.KeyValue{kvs}}
	if err := s.SetQuota(ctx, storage.Quota{MaxKeys: 9}); err != nil {
		t.Fatal(err)
	}
	if err := Import(t, s, "quota", "q", src, 0); !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Fatalf("import over the key quota: %v, want ErrQuotaExceeded", err)
	}
	// The global version and the first batch (8 keys) fit, the second batch did not,
	// and the import was given up: nothing of it stays.
	if r := Export(t, s, "quota"); len(r.Stores) != 0 {
		t.Fatalf("after the refused batch: %+v %+v", r.Stores, r.Entries)
	}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		put(t, s, "quota", storage.PutRequest{StoreID: "mine", Puts: []storage.KeyValue{{Key: k, Version: -1}}})
	}
	err := s.Put(ctx, "quota", storage.PutRequest{StoreID: "other", Puts: []storage.KeyValue{{Key: "x", Version: -1}, {Key: "y", Version: -1}}})
	if !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Errorf("a write over the quota after the import: %v", err)
	}
	if err := s.Put(ctx, "quota", storage.PutRequest{StoreID: "other", Puts: []storage.KeyValue{{Key: "x", Version: -1}}}); err != nil {
		t.Errorf("a write within the quota after the import: %v", err)
	}
}
