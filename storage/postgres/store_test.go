package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/govss/vss/storage"
)

func kv(key string, version int64, value string) storage.KeyValue {
	return storage.KeyValue{Key: key, Version: version, Value: []byte(value)}
}

// put writes items to (user, storeID) and fails t on any error.
func put(t testing.TB, s *Store, user, storeID string, items ...storage.KeyValue) {
	t.Helper()
	if err := s.Put(context.Background(), user, storage.PutRequest{StoreID: storeID, Puts: items}); err != nil {
		t.Fatalf("Put %v: %v", items, err)
	}
}

// get reads key and fails t on any error.
func get(t testing.TB, s *Store, user, storeID, key string) storage.KeyValue {
	t.Helper()
	got, err := s.Get(context.Background(), user, storeID, key)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	return got
}

// listAll pages through a whole listing with pages of pageSize keys, returning
// "key@version" in listing order and the global version of the first page.
func listAll(t testing.TB, s *Store, user, storeID, prefix string, pageSize int) ([]string, int64) {
	t.Helper()
	var keys []string
	var global int64
	before := storage.ListStart
	for first := true; ; first = false {
		page, err := s.List(context.Background(), user, storage.ListRequest{
			StoreID: storeID, Prefix: prefix, Before: before, Limit: pageSize, WithGlobalVersion: first,
		})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if first {
			global = page.GlobalVersion
		} else if page.GlobalVersion != 0 {
			t.Errorf("a later page carries global version %d", page.GlobalVersion)
		}
		for _, k := range page.Keys {
			if k.SortOrder >= before {
				t.Fatalf("sort order %d not below cursor %d", k.SortOrder, before)
			}
			before = k.SortOrder
			keys = append(keys, fmt.Sprintf("%s@%d", k.Key, k.Version))
		}
		if len(page.Keys) < pageSize {
			return keys, global
		}
	}
}

func TestPutVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)

	// Version 0 creates at 1 and fails on an existing key.
	put(t, s, "u", "s", kv("k", 0, "a"))
	if err := s.Put(ctx, "u", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("k", 0, "b")}}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second create: err = %v, want ErrConflict", err)
	}
	// Version N replaces N with N+1; a stale N conflicts.
	put(t, s, "u", "s", kv("k", 1, "b"))
	if err := s.Put(ctx, "u", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("k", 1, "c")}}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("stale version: err = %v, want ErrConflict", err)
	}
	if err := s.Put(ctx, "u", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("missing", 3, "c")}}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("version of a missing key: err = %v, want ErrConflict", err)
	}
	if got := get(t, s, "u", "s", "k"); got.Version != 2 || string(got.Value) != "b" {
		t.Fatalf("k = %+v, want version 2 value b", got)
	}
	// Version -1 writes unconditionally and leaves version 1, existing or not.
	put(t, s, "u", "s", kv("k", -1, "d"), kv("new", -1, "e"))
	if got := get(t, s, "u", "s", "k"); got.Version != 1 || string(got.Value) != "d" {
		t.Fatalf("k after -1 = %+v", got)
	}
	if got := get(t, s, "u", "s", "new"); got.Version != 1 || string(got.Value) != "e" {
		t.Fatalf("new after -1 = %+v", got)
	}
	// Empty and nil values are stored as empty values.
	put(t, s, "u", "s", storage.KeyValue{Key: "empty", Version: 0})
	if got := get(t, s, "u", "s", "empty"); len(got.Value) != 0 || got.Version != 1 {
		t.Fatalf("empty = %+v", got)
	}
	if _, err := s.Get(ctx, "u", "s", "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
	}
	// An empty request succeeds and writes nothing.
	if err := s.Put(ctx, "u", storage.PutRequest{StoreID: "s"}); err != nil {
		t.Fatalf("empty Put: %v", err)
	}
}

func TestPutIsAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	put(t, s, "u", "s", kv("a", 0, "a1"), kv("b", 0, "b1"), kv("c", 0, "c1"), kv(storage.GlobalVersionKey, 0, ""))
	before, _ := listAll(t, s, "u", "s", "", 100)

	failing := []storage.PutRequest{
		// A good update, a good create, an unconditional write, a good delete, and one
		// failed condition of each kind.
		{Puts: []storage.KeyValue{kv("a", 1, "x"), kv("n", 0, "x"), kv("c", 5, "x")}},
		{Puts: []storage.KeyValue{kv("a", 1, "x"), kv("b", 0, "x")}},
		{Puts: []storage.KeyValue{kv("a", -1, "x"), kv("n", 0, "x")}, Deletes: []storage.KeyValue{kv("missing", -1, "")}},
		{Puts: []storage.KeyValue{kv("n", 0, "x")}, Deletes: []storage.KeyValue{kv("b", 1, ""), kv("c", 2, "")}},
		{Puts: []storage.KeyValue{kv("a", 1, "x"), kv(storage.GlobalVersionKey, 7, "")}},
		{Puts: []storage.KeyValue{kv("a", 1, "x"), kv(storage.GlobalVersionKey, 0, "")}},
	}
	for i, req := range failing {
		req.StoreID = "s"
		if err := s.Put(ctx, "u", req); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("request %d: err = %v, want ErrConflict", i, err)
		}
	}
	after, global := listAll(t, s, "u", "s", "", 100)
	if !slices.Equal(before, after) || global != 1 {
		t.Fatalf("failed puts changed the store: %v then %v (global %d)", before, after, global)
	}
	for _, k := range []string{"a", "b", "c"} {
		if got := get(t, s, "u", "s", k); got.Version != 1 || string(got.Value) != k+"1" {
			t.Errorf("%s = %+v after failed puts", k, got)
		}
	}

	// The same kinds of items all succeed together.
	err := s.Put(ctx, "u", storage.PutRequest{
		StoreID: "s",
		Puts:    []storage.KeyValue{kv("a", 1, "a2"), kv("n", 0, "n1"), kv("m", -1, "m1"), kv(storage.GlobalVersionKey, 1, "")},
		Deletes: []storage.KeyValue{kv("b", 1, ""), kv("c", -1, "")},
	})
	if err != nil {
		t.Fatalf("mixed put: %v", err)
	}
	got, global := listAll(t, s, "u", "s", "", 100)
	if want := []string{"m@1", "n@1", "a@2"}; !slices.Equal(got, want) || global != 2 {
		t.Fatalf("after mixed put: %v global %d, want %v global 2", got, global, want)
	}
}

func TestDeleteItems(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	put(t, s, "u", "s", kv("a", 0, ""), kv("b", 0, ""))
	put(t, s, "u", "s", kv("b", 1, ""))

	for _, d := range []storage.KeyValue{kv("missing", -1, ""), kv("missing", 0, ""), kv("a", 2, ""), kv("b", 1, "")} {
		err := s.Put(ctx, "u", storage.PutRequest{StoreID: "s", Deletes: []storage.KeyValue{d}})
		if !errors.Is(err, storage.ErrConflict) {
			t.Errorf("delete %+v: err = %v, want ErrConflict", d, err)
		}
	}
	if err := s.Put(ctx, "u", storage.PutRequest{StoreID: "s", Deletes: []storage.KeyValue{kv("a", 1, ""), kv("b", -1, "")}}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if keys, _ := listAll(t, s, "u", "s", "", 10); len(keys) != 0 {
		t.Fatalf("left %v", keys)
	}
}

func TestStandaloneDeleteIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	put(t, s, "u", "s", kv("a", 0, ""), kv("b", 0, ""))
	for _, d := range []struct {
		key     string
		version int64
		gone    bool
	}{
		{"missing", 1, true},
		{"a", 7, false}, // version mismatch: succeeds, changes nothing
		{"a", 1, true},
		{"a", 1, true}, // again
		{"b", -1, true},
	} {
		if err := s.Delete(ctx, "u", "s", d.key, d.version); err != nil {
			t.Fatalf("Delete(%s, %d): %v", d.key, d.version, err)
		}
		_, err := s.Get(ctx, "u", "s", d.key)
		if gone := errors.Is(err, storage.ErrNotFound); gone != d.gone {
			t.Errorf("after Delete(%s, %d): Get err = %v", d.key, d.version, err)
		}
	}
}

func TestListOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	for _, k := range []string{"k1", "k2", "k3", "k4", "k5"} {
		put(t, s, "u", "s", kv(k, 0, ""))
	}
	put(t, s, "u", "s", kv("k2", 1, "")) // an update keeps its place
	put(t, s, "u", "s", kv("k4", -1, ""))
	if err := s.Put(ctx, "u", storage.PutRequest{StoreID: "s", Deletes: []storage.KeyValue{kv("k3", 1, "")}}); err != nil {
		t.Fatal(err)
	}
	put(t, s, "u", "s", kv("k3", 0, "")) // re-created: moves to the front
	if err := s.Delete(ctx, "u", "s", "k1", -1); err != nil {
		t.Fatal(err)
	}
	put(t, s, "u", "s", kv("k1", -1, "")) // re-created by an upsert: front too
	put(t, s, "u", "s", kv(storage.GlobalVersionKey, 0, ""))

	want := []string{"k1@1", "k3@1", "k5@1", "k4@1", "k2@2"}
	for _, size := range []int{1, 2, 3, 100} {
		got, global := listAll(t, s, "u", "s", "", size)
		if !slices.Equal(got, want) || global != 1 {
			t.Errorf("page size %d: %v global %d, want %v global 1", size, got, global, want)
		}
	}
	// Limit 0 may return only the global version.
	page, err := s.List(ctx, "u", storage.ListRequest{StoreID: "s", Before: storage.ListStart, WithGlobalVersion: true})
	if err != nil || len(page.Keys) != 0 || page.GlobalVersion != 1 {
		t.Errorf("limit 0: %+v, %v", page, err)
	}
	// Without a global version row the first page says 0.
	if _, global := listAll(t, s, "u", "other", "", 10); global != 0 {
		t.Errorf("global version of an empty store = %d", global)
	}
}

func TestListPrefixIsLiteral(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	for _, k := range []string{"a%b", "axb", "a_c", "abc", "a\\d", "ad", "b", "A%b"} {
		put(t, s, "u", "s", kv(k, 0, ""))
	}
	for prefix, want := range map[string][]string{
		"a%":  {"a%b@1"},
		"a_":  {"a_c@1"},
		"a\\": {"a\\d@1"},
		"a":   {"ad@1", "a\\d@1", "abc@1", "a_c@1", "axb@1", "a%b@1"},
		"":    {"A%b@1", "b@1", "ad@1", "a\\d@1", "abc@1", "a_c@1", "axb@1", "a%b@1"},
		"%":   nil,
	} {
		got, _ := listAll(t, s, "u", "s", prefix, 2)
		if !slices.Equal(got, want) {
			t.Errorf("prefix %q: %v, want %v", prefix, got, want)
		}
	}
}

func TestPartitioning(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	put(t, s, "u1", "s", kv("k", 0, "u1s"))
	put(t, s, "u2", "s", kv("k", 0, "u2s"))
	put(t, s, "u1", "", kv("k", 0, "u1-empty-store"))
	put(t, s, "u1", "s", kv("k", 1, "u1s2"))
	for _, c := range []struct{ user, store, value string }{
		{"u1", "s", "u1s2"}, {"u2", "s", "u2s"}, {"u1", "", "u1-empty-store"},
	} {
		if got := get(t, s, c.user, c.store, "k"); string(got.Value) != c.value {
			t.Errorf("(%s, %q) = %+v, want %s", c.user, c.store, got, c.value)
		}
	}
	if keys, _ := listAll(t, s, "u2", "", "", 10); len(keys) != 0 {
		t.Errorf("u2's empty store lists %v", keys)
	}
}

func TestPutRejectsDuplicateKeys(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	err := s.Put(context.Background(), "u", storage.PutRequest{
		StoreID: "s", Puts: []storage.KeyValue{kv("a", 0, "")}, Deletes: []storage.KeyValue{kv("a", -1, "")},
	})
	if err == nil || errors.Is(err, storage.ErrConflict) {
		t.Fatalf("err = %v, want an internal error", err)
	}
}

// TestLimits stores the longest user, store id and key the reference schema allows.
func TestLimits(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	user, store := strings.Repeat("u", 120), strings.Repeat("s", 120)
	key := strings.Repeat("é", 600) // 600 characters, 1200 bytes
	put(t, s, user, store, kv(key, 0, "v"))
	if got := get(t, s, user, store, key); string(got.Value) != "v" {
		t.Fatalf("got %+v", got)
	}
}
