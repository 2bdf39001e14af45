package sqlite

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/internal/groupcommit/groupcommittest"
)

// mode is one way of opening a Store; the semantic tests run against every mode.
type mode struct {
	name string
	open func(t *testing.T) *Store
}

var modes = []mode{
	{name: "file", open: openFile},
	{name: "memory", open: openMemory},
}

// forEachMode runs f as a parallel subtest against a fresh Store of every mode.
func forEachMode(t *testing.T, f func(t *testing.T, s *Store)) {
	t.Helper()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f(t, m.open(t))
		})
	}
}

// openFile opens a Store on a new file in a directory that does not exist yet.
func openFile(t *testing.T) *Store {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "data", "vss.db"))
}

// openPath opens a Store on the file at path and closes it when the test ends.
func openPath(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, WithGroupCommit(groupcommittest.Enabled()))
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openMemory opens an in-memory Store and closes it when the test ends.
func openMemory(t *testing.T) *Store {
	t.Helper()
	s, err := OpenMemory(t.Context(), WithGroupCommit(groupcommittest.Enabled()))
	if err != nil {
		t.Fatalf("OpenMemory: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// kv is shorthand for a storage.KeyValue with a string value.
func kv(key string, version int64, value string) storage.KeyValue {
	return storage.KeyValue{Key: key, Version: version, Value: []byte(value)}
}

// mustPut applies a Put that must succeed.
func mustPut(t *testing.T, s storage.Store, user, storeID string, puts, deletes []storage.KeyValue) {
	t.Helper()
	err := s.Put(t.Context(), user, storage.PutRequest{StoreID: storeID, Puts: puts, Deletes: deletes})
	if err != nil {
		t.Fatalf("Put(%q, %q, puts %v, deletes %v): %v", user, storeID, keysOf(puts), keysOf(deletes), err)
	}
}

// wantEntry checks that key is stored with the given version and value.
func wantEntry(t *testing.T, s storage.Store, user, storeID, key string, version int64, value []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), user, storeID, key)
	if err != nil {
		t.Fatalf("Get(%q, %q, %q): %v", user, storeID, key, err)
	}
	if got.Key != key || got.Version != version || !bytes.Equal(got.Value, value) {
		t.Fatalf("Get(%q, %q, %q) = {%q v%d %d bytes}, want {%q v%d %d bytes}",
			user, storeID, key, got.Key, got.Version, len(got.Value), key, version, len(value))
	}
}

// wantMissing checks that key is not stored.
func wantMissing(t *testing.T, s storage.Store, user, storeID, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), user, storeID, key)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(%q, %q, %q) = %+v, %v; want ErrNotFound", user, storeID, key, got, err)
	}
}

// listAll pages through every key of a store with the given prefix, newest first,
// with pages of pageSize keys.
func listAll(t *testing.T, s storage.Store, user, storeID, prefix string, pageSize int) []storage.KeyVersion {
	t.Helper()
	var all []storage.KeyVersion
	before := storage.ListStart
	for {
		page, err := s.List(t.Context(), user, storage.ListRequest{
			StoreID: storeID, Prefix: prefix, Before: before, Limit: pageSize,
		})
		if err != nil {
			t.Fatalf("List(%q, %q, prefix %q, before %d): %v", user, storeID, prefix, before, err)
		}
		if len(page.Keys) > pageSize {
			t.Fatalf("List returned %d keys, limit %d", len(page.Keys), pageSize)
		}
		all = append(all, page.Keys...)
		if len(page.Keys) < pageSize {
			return all
		}
		before = page.Keys[len(page.Keys)-1].SortOrder
	}
}

// listKeys returns the keys of every entry of a store with the given prefix, newest first.
func listKeys(t *testing.T, s storage.Store, user, storeID, prefix string) []string {
	t.Helper()
	return keysOfVersions(listAll(t, s, user, storeID, prefix, 1000))
}

func keysOf(kvs []storage.KeyValue) []string {
	keys := make([]string, len(kvs))
	for i, e := range kvs {
		keys[i] = e.Key
	}
	return keys
}

func keysOfVersions(kvs []storage.KeyVersion) []string {
	keys := make([]string, len(kvs))
	for i, e := range kvs {
		keys[i] = e.Key
	}
	return keys
}

// wantKeys checks that a store lists exactly want, in that order.
func wantKeys(t *testing.T, s storage.Store, user, storeID string, want ...string) {
	t.Helper()
	if got := listKeys(t, s, user, storeID, ""); !slices.Equal(got, want) {
		t.Fatalf("List(%q, %q) = %q, want %q", user, storeID, got, want)
	}
}
