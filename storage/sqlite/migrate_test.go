package sqlite

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/govss/vss/storage"
)

// latestMigration returns the number of the last embedded migration, the schema version
// of an up-to-date database.
func latestMigration(t *testing.T) int {
	t.Helper()
	fsys, err := migrationFS()
	if err != nil {
		t.Fatal(err)
	}
	ms, err := readMigrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return ms[len(ms)-1].version
}

// userVersion returns the schema version recorded in the database of s.
func userVersion(t *testing.T, s *Store) int {
	t.Helper()
	var v int
	if err := s.write.QueryRowContext(t.Context(), "PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "vss.db")
	ctx := t.Context()
	latest := latestMigration(t)

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, user, storeID, []storage.KeyValue{kv("a", 0, "a"), kv("b", 0, "b"), kv(storage.GlobalVersionKey, 0, "")}, nil)
	first := listAll(t, s, user, storeID, "", 10)
	// Delete the newest key: its sort order must not be handed out again after reopening.
	if err := s.Delete(ctx, user, storeID, "b", 1); err != nil {
		t.Fatal(err)
	}
	if v := userVersion(t, s); v != latest {
		t.Fatalf("user_version = %d, want %d", v, latest)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		s := openPath(t, path)
		if v := userVersion(t, s); v != latest {
			t.Fatalf("after reopening, user_version = %d, want %d", v, latest)
		}
		wantEntry(t, s, user, storeID, "a", 1, []byte("a"))
		wantEntry(t, s, user, storeID, storage.GlobalVersionKey, 1, nil)
		wantMissing(t, s, user, storeID, "b")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	s = openPath(t, path)
	mustPut(t, s, user, storeID, []storage.KeyValue{kv("c", 0, "c")}, nil)
	got := listAll(t, s, user, storeID, "", 10)
	if len(got) != 2 || got[0].Key != "c" || got[0].SortOrder <= first[0].SortOrder {
		t.Fatalf("after reopening, List = %+v; want c first with a sort order above %d, never reused", got, first[0].SortOrder)
	}
}

func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	// Several stores opening one new file at once all switch it to WAL and migrate it;
	// they must take turns rather than fail, and then share the data.
	const openers = 3
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "vss.db")
		stores := make([]*Store, openers)
		errs := make([]error, openers)
		var wg sync.WaitGroup
		for i := range openers {
			wg.Go(func() { stores[i], errs[i] = Open(t.Context(), path) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: Open %d: %v", round, i, err)
			}
			t.Cleanup(func() { stores[i].Close() })
		}
		mustPut(t, stores[0], user, storeID, []storage.KeyValue{kv("k", 0, "v")}, nil)
		for _, s := range stores[1:] {
			wantEntry(t, s, user, storeID, "k", 1, []byte("v"))
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "vss.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.ExecContext(t.Context(), "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database from a newer schema succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open = %v, want an error about a newer schema", err)
	}
}

func TestApplyMigrationsUpgradesInPlace(t *testing.T) {
	t.Parallel()
	s := openMemory(t)
	ctx := t.Context()
	mustPut(t, s, user, storeID, []storage.KeyValue{kv("a", 0, "a")}, nil)

	base, err := migrationFS()
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := readMigrations(base)
	if err != nil {
		t.Fatal(err)
	}
	next := embedded[len(embedded)-1].version + 1
	fsys := fstest.MapFS{
		fmt.Sprintf("%04d_extra.sql", next): {Data: []byte("CREATE TABLE extra (x INTEGER);\nINSERT INTO extra VALUES (42);")},
		"README.txt":                        {Data: []byte("not a migration")},
	}
	for _, m := range embedded {
		fsys[m.name] = &fstest.MapFile{Data: []byte(m.sql)}
	}
	for range 2 { // the second run has nothing to do
		if err := applyMigrations(ctx, s.write, fsys); err != nil {
			t.Fatal(err)
		}
	}
	if v := userVersion(t, s); v != next {
		t.Fatalf("user_version = %d, want %d", v, next)
	}
	var n int
	if err := s.write.QueryRowContext(ctx, "SELECT count(*) FROM extra").Scan(&n); err != nil || n != 1 {
		t.Fatalf("extra has %d rows (%v), want 1: migration %d must run exactly once", n, err, next)
	}
	wantEntry(t, s, user, storeID, "a", 1, []byte("a"))
}

func TestReadMigrationsRejectsBadNames(t *testing.T) {
	t.Parallel()
	for name, fsys := range map[string]fstest.MapFS{
		"gap":       {"0001_a.sql": {}, "0003_c.sql": {}},
		"duplicate": {"0001_a.sql": {}, "0001_b.sql": {}},
		"no number": {"0001_a.sql": {}, "extra.sql": {}},
		"zero":      {"0000_a.sql": {}},
	} {
		if _, err := readMigrations(fsys); err == nil {
			t.Errorf("%s: readMigrations succeeded", name)
		}
	}
}

func TestOpenPathWithURICharacters(t *testing.T) {
	t.Parallel()
	// Characters that mean something in a URI must stay part of the file name.
	path := filepath.Join(t.TempDir(), "a?b=c&d", "50% #1", "vss.db")
	s := openPath(t, path)
	mustPut(t, s, user, storeID, []storage.KeyValue{kv("k", 0, "v")}, nil)
	wantEntry(t, s, user, storeID, "k", 1, []byte("v"))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at the path given: %v", err)
	}
}

// TestNonIntegerVersionsRepaired opens a database in which an older release let a
// version overflow into a REAL, which no read could scan: migration 0004 sets it to the
// largest version, so the store lists and reads it again, and refuses to increment it.
func TestNonIntegerVersionsRepaired(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "vss.db")
	s := openPath(t, path)
	mustPut(t, s, user, storeID, []storage.KeyValue{kv("a", 0, "a"), kv("b", 0, "b")}, nil)
	for _, q := range []string{
		"UPDATE vss_db SET version = 9223372036854775807 + 1 WHERE key = 'a'", // what version + 1 stored
		"PRAGMA user_version = 3",
	} {
		if _, err := s.write.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := s.List(t.Context(), user, storage.ListRequest{StoreID: storeID, Before: storage.ListStart, Limit: 10}); err == nil {
		t.Fatal("listing a REAL version succeeded: the test no longer sets up what it should")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openPath(t, path)
	wantEntry(t, s, user, storeID, "a", math.MaxInt64, []byte("a"))
	if got := listKeys(t, s, user, storeID, ""); strings.Join(got, " ") != "b a" {
		t.Fatalf("listing = %v, want [b a]", got)
	}
	err := s.Put(t.Context(), user, storage.PutRequest{StoreID: storeID, Puts: []storage.KeyValue{kv("a", math.MaxInt64, "next")}})
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("increment of the largest version: %v, want ErrConflict (and no REAL)", err)
	}
	wantEntry(t, s, user, storeID, "a", math.MaxInt64, []byte("a"))
}
