package dumptest

import (
	"errors"
	"slices"
	"testing"

	"github.com/govss/vss/storage"
)

// Porter is a store under test for imports.
type Porter interface {
	Exporter
	storage.Importer
	storage.QuotaStore
}

// importBatch is how many entries the checks import per transaction.
const importBatch = 7

// Import imports an export into user's stores under importID in batches, skipping what
// an earlier attempt committed, and stops after stopAfter batches when stopAfter > 0
// (an interrupted import). It returns the first error.
func Import(t *testing.T, s storage.Importer, user, importID string, r *Recorder, stopAfter int) error {
	t.Helper()
	ctx, batches := t.Context(), 0
	for i, st := range r.Stores {
		state, err := s.BeginImport(ctx, user, importID, st)
		if err != nil {
			return err
		}
		if state.Done {
			continue
		}
		entries := r.Entries[i][state.Entries:]
		for n := state.Entries; len(entries) > 0; {
			if stopAfter > 0 && batches == stopAfter {
				return nil
			}
			b := entries[:min(importBatch, len(entries))]
			if err := s.ImportEntries(ctx, user, importID, st.ID, n, b); err != nil {
				return err
			}
			n, entries, batches = n+int64(len(b)), entries[len(b):], batches+1
		}
		if err := s.EndImport(ctx, user, importID, st.ID); err != nil {
			return err
		}
	}
	return s.FinishImport(ctx, user, importID)
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

	// A store with a key is refused, and nothing of it is written.
	put(t, s, "frank", storage.PutRequest{StoreID: "wallet", Puts: []storage.KeyValue{{Key: "mine", Version: -1}}})
	var ne *storage.NotEmptyError
	if err := Import(t, s, "frank", "dump-3", src, 0); !errors.As(err, &ne) || ne.StoreID != "wallet" {
		t.Errorf("import into a store that is not empty: %v, want a NotEmptyError of wallet", err)
	}
	if r := Export(t, s, "frank"); len(r.Entries[len(r.Entries)-1]) != 1 {
		t.Errorf("the refused store was changed: %+v", r.Entries)
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
	// The global version and the first batch (8 keys) fit; the second batch did not.
	if r := Export(t, s, "quota"); len(r.Entries) != 1 || len(r.Entries[0]) != importBatch {
		t.Fatalf("after the refused batch: %+v", r.Entries)
	}
	err := s.Put(ctx, "quota", storage.PutRequest{StoreID: "other", Puts: []storage.KeyValue{{Key: "x", Version: -1}, {Key: "y", Version: -1}}})
	if !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Errorf("a write over the quota after the import: %v", err)
	}
	if err := s.Put(ctx, "quota", storage.PutRequest{StoreID: "other", Puts: []storage.KeyValue{{Key: "x", Version: -1}}}); err != nil {
		t.Errorf("a write within the quota after the import: %v", err)
	}
}
