package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/govss/vss/storage"
)

const (
	user    = "02aa"
	storeID = "wallet"
)

func TestPutVersions(t *testing.T) {
	t.Parallel()
	// Each step applies puts to a store that holds the state left by the previous steps.
	steps := []struct {
		name    string
		puts    []storage.KeyValue
		wantErr error
		// want is the state of key "a" after the step, nil for absent.
		want *storage.KeyValue
	}{
		{"create", []storage.KeyValue{kv("a", 0, "a1")}, nil, &storage.KeyValue{Version: 1, Value: []byte("a1")}},
		{"create existing", []storage.KeyValue{kv("a", 0, "x")}, storage.ErrConflict, &storage.KeyValue{Version: 1, Value: []byte("a1")}},
		{"update", []storage.KeyValue{kv("a", 1, "a2")}, nil, &storage.KeyValue{Version: 2, Value: []byte("a2")}},
		{"update stale", []storage.KeyValue{kv("a", 1, "x")}, storage.ErrConflict, &storage.KeyValue{Version: 2, Value: []byte("a2")}},
		{"update future", []storage.KeyValue{kv("a", 3, "x")}, storage.ErrConflict, &storage.KeyValue{Version: 2, Value: []byte("a2")}},
		{"upsert existing", []storage.KeyValue{kv("a", -1, "a3")}, nil, &storage.KeyValue{Version: 1, Value: []byte("a3")}},
		{"update after upsert", []storage.KeyValue{kv("a", 1, "a4")}, nil, &storage.KeyValue{Version: 2, Value: []byte("a4")}},
		{"upsert again", []storage.KeyValue{kv("a", -1, "a5")}, nil, &storage.KeyValue{Version: 1, Value: []byte("a5")}},
		{"upsert empty value", []storage.KeyValue{{Key: "a", Version: -1}}, nil, &storage.KeyValue{Version: 1}},
	}
	forEachMode(t, func(t *testing.T, s *Store) {
		for _, step := range steps {
			err := s.Put(t.Context(), user, storage.PutRequest{StoreID: storeID, Puts: step.puts})
			if !errors.Is(err, step.wantErr) || (step.wantErr == nil) != (err == nil) {
				t.Fatalf("%s: Put = %v, want %v", step.name, err, step.wantErr)
			}
			wantEntry(t, s, user, storeID, "a", step.want.Version, step.want.Value)
		}
		// Updating or deleting a key that never existed is a conflict; upserting creates it.
		for _, version := range []int64{1, 7} {
			err := s.Put(t.Context(), user, storage.PutRequest{StoreID: storeID, Puts: []storage.KeyValue{kv("b", version, "x")}})
			if !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("update of missing key at version %d: Put = %v, want ErrConflict", version, err)
			}
			wantMissing(t, s, user, storeID, "b")
		}
		mustPut(t, s, user, storeID, []storage.KeyValue{kv("c", -1, "c1")}, nil)
		wantEntry(t, s, user, storeID, "c", 1, []byte("c1"))
	})
}

func TestPutAllOrNothing(t *testing.T) {
	t.Parallel()
	gv := storage.GlobalVersionKey
	tests := []struct {
		name    string
		puts    []storage.KeyValue
		deletes []storage.KeyValue
	}{
		{"create then create existing",
			[]storage.KeyValue{kv("new", 0, "n"), kv("a", 0, "x")}, nil},
		{"update then stale update",
			[]storage.KeyValue{kv("a", 1, "x"), kv("b", 1, "x")}, nil},
		{"upsert then failed create",
			[]storage.KeyValue{kv("a", -1, "x"), kv("new", -1, "n"), kv("b", 0, "x")}, nil},
		{"puts then delete of missing key",
			[]storage.KeyValue{kv("a", 1, "x"), kv("new", 0, "n")}, []storage.KeyValue{kv("missing", -1, "")}},
		{"puts then delete at wrong version",
			[]storage.KeyValue{kv("a", 1, "x")}, []storage.KeyValue{kv("b", 1, "")}},
		{"deletes then failed put",
			[]storage.KeyValue{kv("new", 0, "n"), kv("a", 5, "x")}, []storage.KeyValue{kv("b", 2, ""), kv("a2", -1, "")}},
		{"delete at version of missing key",
			nil, []storage.KeyValue{kv("b", 2, ""), kv("missing", 1, "")}},
		{"stale global version",
			[]storage.KeyValue{kv("a", 1, "x"), kv("new", 0, "n"), kv(gv, 3, "")}, nil},
		{"global version created twice",
			[]storage.KeyValue{kv("new", 0, "n"), kv(gv, 0, "")}, []storage.KeyValue{kv("b", 2, "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			forEachMode(t, func(t *testing.T, s *Store) {
				// a at version 1, a2 at version 1, b at version 2, global version 1.
				mustPut(t, s, user, storeID, []storage.KeyValue{kv("a", 0, "a1"), kv("a2", 0, "a2"), kv("b", 0, "b1"), kv(gv, 0, "")}, nil)
				mustPut(t, s, user, storeID, []storage.KeyValue{kv("b", 1, "b2")}, nil)

				err := s.Put(t.Context(), user, storage.PutRequest{StoreID: storeID, Puts: tt.puts, Deletes: tt.deletes})
				if !errors.Is(err, storage.ErrConflict) {
					t.Fatalf("Put = %v, want ErrConflict", err)
				}
				wantEntry(t, s, user, storeID, "a", 1, []byte("a1"))
				wantEntry(t, s, user, storeID, "a2", 1, []byte("a2"))
				wantEntry(t, s, user, storeID, "b", 2, []byte("b2"))
				wantEntry(t, s, user, storeID, gv, 1, nil)
				wantMissing(t, s, user, storeID, "new")
				wantKeys(t, s, user, storeID, "b", "a2", "a")
			})
		})
	}
}

func TestPutMixed(t *testing.T) {
	t.Parallel()
	gv := storage.GlobalVersionKey
	forEachMode(t, func(t *testing.T, s *Store) {
		mustPut(t, s, user, storeID, []storage.KeyValue{kv("a", 0, "a1"), kv("b", 0, "b1"), kv("c", 0, "c1")}, nil)
		mustPut(t, s, user, storeID,
			[]storage.KeyValue{kv("a", 1, "a2"), kv("d", 0, "d1"), kv("e", -1, "e1"), kv(gv, 0, "")},
			[]storage.KeyValue{kv("b", 1, ""), kv("c", -1, "")})
		wantEntry(t, s, user, storeID, "a", 2, []byte("a2"))
		wantEntry(t, s, user, storeID, "d", 1, []byte("d1"))
		wantEntry(t, s, user, storeID, "e", 1, []byte("e1"))
		wantEntry(t, s, user, storeID, gv, 1, nil)
		wantMissing(t, s, user, storeID, "b")
		wantMissing(t, s, user, storeID, "c")
		wantKeys(t, s, user, storeID, "e", "d", "a")

		// An empty request succeeds and changes nothing.
		mustPut(t, s, user, storeID, nil, nil)
		wantKeys(t, s, user, storeID, "e", "d", "a")
	})
}

func TestDelete(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		mustPut(t, s, user, storeID, []storage.KeyValue{kv("a", 0, "a1"), kv("b", 0, "b1")}, nil)
		mustPut(t, s, user, storeID, []storage.KeyValue{kv("a", 1, "a2")}, nil)

		// A missing key or another version is a successful no-op.
		for _, c := range []struct {
			key     string
			version int64
		}{{"missing", -1}, {"missing", 0}, {"missing", 3}, {"a", 1}, {"a", 3}, {"a", 0}} {
			if err := s.Delete(ctx, user, storeID, c.key, c.version); err != nil {
				t.Fatalf("Delete(%q, %d) = %v, want nil", c.key, c.version, err)
			}
		}
		wantEntry(t, s, user, storeID, "a", 2, []byte("a2"))

		if err := s.Delete(ctx, user, storeID, "a", 2); err != nil {
			t.Fatalf("Delete(a, 2) = %v", err)
		}
		wantMissing(t, s, user, storeID, "a")
		if err := s.Delete(ctx, user, storeID, "b", -1); err != nil {
			t.Fatalf("Delete(b, -1) = %v", err)
		}
		wantMissing(t, s, user, storeID, "b")
		// Deleting again is still fine.
		if err := s.Delete(ctx, user, storeID, "b", -1); err != nil {
			t.Fatalf("second Delete(b, -1) = %v", err)
		}
		wantKeys(t, s, user, storeID)
	})
}

func TestGetMissing(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, s *Store) {
		wantMissing(t, s, user, storeID, "nothing")
		// The global version row does not exist until a Put sets it; the service turns
		// that into version 0.
		wantMissing(t, s, user, storeID, storage.GlobalVersionKey)
	})
}

func TestSortOrder(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, s *Store) {
		for _, k := range []string{"a", "b", "c"} {
			mustPut(t, s, user, storeID, []storage.KeyValue{kv(k, 0, k)}, nil)
		}
		wantKeys(t, s, user, storeID, "c", "b", "a")
		before := listAll(t, s, user, storeID, "", 10)

		// Updates, conditional or not, keep each key's place and sort order.
		mustPut(t, s, user, storeID, []storage.KeyValue{kv("a", 1, "a2"), kv("b", -1, "b2")}, nil)
		mustPut(t, s, user, storeID, []storage.KeyValue{kv("a", 2, "a3")}, nil)
		after := listAll(t, s, user, storeID, "", 10)
		for i := range before {
			if before[i].Key != after[i].Key || before[i].SortOrder != after[i].SortOrder {
				t.Fatalf("after updates, entry %d = %+v, want key and sort order of %+v", i, after[i], before[i])
			}
		}
		if after[2].Version != 3 || after[1].Version != 1 {
			t.Fatalf("after updates, versions of a and b = %d, %d, want 3, 1", after[2].Version, after[1].Version)
		}

		// Delete and re-create moves a key to the front, with a sort order never used before.
		if err := s.Delete(t.Context(), user, storeID, "a", -1); err != nil {
			t.Fatal(err)
		}
		mustPut(t, s, user, storeID, []storage.KeyValue{kv("a", 0, "a")}, nil)
		wantKeys(t, s, user, storeID, "a", "c", "b")
		// The same through a Put's delete item, in a later request.
		mustPut(t, s, user, storeID, nil, []storage.KeyValue{kv("b", 1, "")})
		mustPut(t, s, user, storeID, []storage.KeyValue{kv("b", -1, "b")}, nil)
		wantKeys(t, s, user, storeID, "b", "a", "c")

		final := listAll(t, s, user, storeID, "", 10)
		if final[0].SortOrder <= final[1].SortOrder || final[1].SortOrder <= before[0].SortOrder {
			t.Fatalf("sort orders %+v: re-created keys must have new, larger sort orders than %+v", final, before)
		}
	})
}

func TestListPrefixIsLiteral(t *testing.T) {
	t.Parallel()
	// Keys in creation order. LIKE would treat % and _ as wildcards and ignore ASCII
	// case; GLOB would treat *, ? and [ as wildcards.
	keys := []string{
		"a%b", "axb", "a_b", "a*b", "a?b", "a[b]", "A%b", "ABC", "abc", "ab",
		"%", "%x", "_x", "xx", "é1", "éa", "e1", "a\\b", "a\\%",
	}
	prefixes := []string{
		"", "a", "A", "a%", "a_", "a*", "a?", "a[", "a[b]", "%", "_", "x", "é", "e",
		"ab", "AB", "a%b", "a%bc", "a\\", "a\\%", "nothing", "[", "*",
	}
	forEachMode(t, func(t *testing.T, s *Store) {
		for _, k := range keys {
			mustPut(t, s, user, storeID, []storage.KeyValue{kv(k, 0, k)}, nil)
		}
		for _, prefix := range prefixes {
			var want []string
			for _, k := range slices.Backward(keys) {
				if strings.HasPrefix(k, prefix) {
					want = append(want, k)
				}
			}
			for _, pageSize := range []int{1, 3, 100} {
				got := keysOfVersions(listAll(t, s, user, storeID, prefix, pageSize))
				if !slices.Equal(got, want) {
					t.Errorf("prefix %q, page size %d: keys %q, want %q", prefix, pageSize, got, want)
				}
			}
		}
	})
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		var want []string
		for i := range 25 {
			k := "k" + string(rune('a'+i))
			// Interleave keys with another prefix, which the filtered pages skip.
			mustPut(t, s, user, storeID, []storage.KeyValue{kv(k, 0, k), kv("z"+k, 0, "")}, nil)
			want = append([]string{k}, want...)
		}
		mustPut(t, s, user, storeID, []storage.KeyValue{kv(storage.GlobalVersionKey, 0, "")}, nil)

		var got []string
		var sizes []int
		before := storage.ListStart
		for page := 0; ; page++ {
			res, err := s.List(ctx, user, storage.ListRequest{
				StoreID: storeID, Prefix: "k", Before: before, Limit: 10, WithGlobalVersion: page == 0,
			})
			if err != nil {
				t.Fatal(err)
			}
			wantGV := int64(0)
			if page == 0 {
				wantGV = 1
			}
			if res.GlobalVersion != wantGV {
				t.Fatalf("page %d: global version %d, want %d", page, res.GlobalVersion, wantGV)
			}
			sizes = append(sizes, len(res.Keys))
			for _, e := range res.Keys {
				if e.SortOrder >= before {
					t.Fatalf("page %d: sort order %d not below cursor %d", page, e.SortOrder, before)
				}
				if e.Version != 1 {
					t.Fatalf("page %d: %q has version %d, want 1", page, e.Key, e.Version)
				}
				before = e.SortOrder
				got = append(got, e.Key)
			}
			if len(res.Keys) < 10 {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("keys %q, want %q", got, want)
		}
		if !slices.Equal(sizes, []int{10, 10, 5}) {
			t.Fatalf("page sizes %v, want [10 10 5]", sizes)
		}

		// Limit 0 returns only the global version.
		res, err := s.List(ctx, user, storage.ListRequest{StoreID: storeID, Before: storage.ListStart, WithGlobalVersion: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Keys) != 0 || res.GlobalVersion != 1 {
			t.Fatalf("List with limit 0 = %+v, want no keys and global version 1", res)
		}
	})
}

func TestListGlobalVersion(t *testing.T) {
	t.Parallel()
	gv := storage.GlobalVersionKey
	forEachMode(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		list := func(prefix string) storage.ListPage {
			t.Helper()
			page, err := s.List(ctx, user, storage.ListRequest{
				StoreID: storeID, Prefix: prefix, Before: storage.ListStart, Limit: 100, WithGlobalVersion: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			return page
		}
		if page := list(""); page.GlobalVersion != 0 || len(page.Keys) != 0 {
			t.Fatalf("empty store: %+v, want global version 0 and no keys", page)
		}
		mustPut(t, s, user, storeID, []storage.KeyValue{kv("k", 0, "v"), kv(gv, 0, "")}, nil)
		mustPut(t, s, user, storeID, []storage.KeyValue{kv(gv, 1, "")}, nil)
		if err := s.Put(ctx, user, storage.PutRequest{StoreID: storeID, Puts: []storage.KeyValue{kv(gv, 1, "")}}); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("stale global version: Put = %v, want ErrConflict", err)
		}
		for _, prefix := range []string{"", "g", gv} {
			page := list(prefix)
			if page.GlobalVersion != 2 {
				t.Fatalf("prefix %q: global version %d, want 2", prefix, page.GlobalVersion)
			}
			for _, e := range page.Keys {
				if e.Key == gv {
					t.Fatalf("prefix %q: List returned the global version row as a key", prefix)
				}
			}
		}
		if got := keysOfVersions(list("").Keys); !slices.Equal(got, []string{"k"}) {
			t.Fatalf("keys %q, want [k]", got)
		}
		// Without WithGlobalVersion the field stays zero.
		page, err := s.List(ctx, user, storage.ListRequest{StoreID: storeID, Before: storage.ListStart, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if page.GlobalVersion != 0 {
			t.Fatalf("GlobalVersion = %d without WithGlobalVersion, want 0", page.GlobalVersion)
		}
		// Another store of the same user has its own global version.
		if page, err := s.List(ctx, user, storage.ListRequest{StoreID: "other", Before: storage.ListStart, WithGlobalVersion: true}); err != nil || page.GlobalVersion != 0 {
			t.Fatalf("other store: %+v, %v; want global version 0", page, err)
		}
	})
}

func TestIsolation(t *testing.T) {
	t.Parallel()
	type part struct{ user, store string }
	parts := []part{{"u1", ""}, {"u1", "s"}, {"u2", ""}, {"u2", "s"}, {"u1", "S"}}
	value := func(p part) []byte { return []byte(p.user + "/" + p.store) }
	forEachMode(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		for _, p := range parts {
			mustPut(t, s, p.user, p.store, []storage.KeyValue{{Key: "k", Version: 0, Value: value(p)}, kv(storage.GlobalVersionKey, 0, "")}, nil)
		}
		// The same key in another partition is an independent entry.
		mustPut(t, s, "u1", "s", []storage.KeyValue{{Key: "k", Version: 1, Value: []byte("second")}}, nil)
		wantEntry(t, s, "u1", "s", "k", 2, []byte("second"))
		for _, p := range parts[2:] {
			wantEntry(t, s, p.user, p.store, "k", 1, value(p))
		}
		if err := s.Delete(ctx, "u1", "", "k", -1); err != nil {
			t.Fatal(err)
		}
		wantMissing(t, s, "u1", "", "k")
		wantKeys(t, s, "u1", "")
		for _, p := range parts[1:] {
			wantKeys(t, s, p.user, p.store, "k")
		}
		// A conditional write in one partition does not see another's versions.
		err := s.Put(ctx, "u2", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("k", 2, "x")}})
		if !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("Put(u2/s k@2) = %v, want ErrConflict", err)
		}
		wantMissing(t, s, "nobody", "s", "k")
	})
}

func TestLargeValuesAndLongNames(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("κ", 300) + strings.Repeat("k", 300) // 600 characters
	store := strings.Repeat("s", 119) + "é"                    // 120 characters
	big := make([]byte, 8<<20)
	rand.Read(big)
	bigger := make([]byte, 5<<20+1)
	rand.Read(bigger)
	forEachMode(t, func(t *testing.T, s *Store) {
		mustPut(t, s, user, store, []storage.KeyValue{{Key: key, Version: 0, Value: big}}, nil)
		wantEntry(t, s, user, store, key, 1, big)
		mustPut(t, s, user, store, []storage.KeyValue{{Key: key, Version: 1, Value: bigger}}, nil)
		wantEntry(t, s, user, store, key, 2, bigger)
		if got := listKeys(t, s, user, store, key[:10]); !slices.Equal(got, []string{key}) {
			t.Fatalf("List = %q, want the long key", got)
		}
	})
}

func TestEmptyValue(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, s *Store) {
		mustPut(t, s, user, storeID, []storage.KeyValue{{Key: "nil", Version: 0}, {Key: "empty", Version: 0, Value: []byte{}}}, nil)
		for _, k := range []string{"nil", "empty"} {
			got, err := s.Get(t.Context(), user, storeID, k)
			if err != nil || got.Version != 1 || len(got.Value) != 0 {
				t.Fatalf("Get(%q) = %+v, %v; want version 1 and an empty value", k, got, err)
			}
		}
	})
}

func TestContextCanceled(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, s *Store) {
		mustPut(t, s, user, storeID, []storage.KeyValue{kv("a", 0, "a")}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.Get(ctx, user, storeID, "a"); !errors.Is(err, context.Canceled) {
			t.Errorf("Get = %v, want context.Canceled", err)
		}
		if err := s.Put(ctx, user, storage.PutRequest{StoreID: storeID, Puts: []storage.KeyValue{kv("b", 0, "b")}}); !errors.Is(err, context.Canceled) {
			t.Errorf("Put = %v, want context.Canceled", err)
		}
		if err := s.Delete(ctx, user, storeID, "a", -1); !errors.Is(err, context.Canceled) {
			t.Errorf("Delete = %v, want context.Canceled", err)
		}
		if _, err := s.List(ctx, user, storage.ListRequest{StoreID: storeID, Before: storage.ListStart, Limit: 1, WithGlobalVersion: true}); !errors.Is(err, context.Canceled) {
			t.Errorf("List = %v, want context.Canceled", err)
		}
		// Nothing was written, and the store still works.
		wantEntry(t, s, user, storeID, "a", 1, []byte("a"))
		wantMissing(t, s, user, storeID, "b")
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping = %v", err)
		}
	})
}

func TestOpenMemoryIsPrivate(t *testing.T) {
	t.Parallel()
	a, b := openMemory(t), openMemory(t)
	mustPut(t, a, user, storeID, []storage.KeyValue{kv("k", 0, "a")}, nil)
	wantMissing(t, b, user, storeID, "k")
	mustPut(t, b, user, storeID, []storage.KeyValue{kv("k", 0, "b")}, nil)
	wantEntry(t, a, user, storeID, "k", 1, []byte("a"))
	wantEntry(t, b, user, storeID, "k", 1, []byte("b"))
}

func TestPing(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, s *Store) {
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping = %v", err)
		}
	})
}

// TestReadersSeeWrites checks read-after-write across the separate read pool: every
// Get issued after a Put returned sees it.
func TestReadersSeeWrites(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, s *Store) {
		mustPut(t, s, user, storeID, []storage.KeyValue{kv("k", 0, "0")}, nil)
		for v := int64(1); v <= 50; v++ {
			value := []byte{byte(v)}
			mustPut(t, s, user, storeID, []storage.KeyValue{{Key: "k", Version: v, Value: value}}, nil)
			got, err := s.Get(t.Context(), user, storeID, "k")
			if err != nil || got.Version != v+1 || !bytes.Equal(got.Value, value) {
				t.Fatalf("Get after Put of version %d = %+v, %v", v+1, got, err)
			}
		}
	})
}

// TestFileSettings checks the connection settings that durability and concurrency rest on.
func TestFileSettings(t *testing.T) {
	t.Parallel()
	s := openFile(t)
	ctx := t.Context()
	pragma := func(db interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}, name string) string {
		t.Helper()
		var v string
		if err := db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		return v
	}
	for _, c := range []struct {
		name, want string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"busy_timeout", "5000"},
		{"query_only", "0"},
	} {
		if got := pragma(s.write, c.name); got != c.want {
			t.Errorf("write connection: %s = %s, want %s", c.name, got, c.want)
		}
	}
	if got := pragma(s.read, "query_only"); got != "1" {
		t.Errorf("read connection: query_only = %s, want 1", got)
	}
	if got := pragma(s.read, "journal_mode"); got != "wal" {
		t.Errorf("read connection: journal_mode = %s, want wal", got)
	}
	if _, err := s.read.ExecContext(ctx, "DELETE FROM vss_db"); err == nil {
		t.Error("a read connection could write")
	}
}
