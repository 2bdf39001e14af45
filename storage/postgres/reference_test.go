package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
)

// referenceStore is the expected content of one store after testdata/reference_data.sql.
type referenceStore struct {
	user, store string
	keys        []string          // listing order, "key@version"
	values      map[string]string // key to value
	global      int64
}

var referenceStores = []referenceStore{
	{
		user: "alice", store: "wallet",
		keys:   []string{"k1@1", "k4@1", "k3@3", "k2@2"},
		values: map[string]string{"k1": "k1-b", "k2": "k2-b", "k3": "k3-c", "k4": "k4-a"},
		global: 5,
	},
	{
		user: "alice", store: "backup",
		keys:   []string{"x2@1", "x3@1", "x1@1"},
		values: map[string]string{"x1": "x1-a", "x2": "x2-a", "x3": "x3-a"},
	},
	{
		user: "bob", store: "wallet",
		keys:   []string{"b2@2", "b1@1"},
		values: map[string]string{"b1": "b1-b", "b2": "b2-b"},
	},
}

// TestReferenceDatabase prepares databases the way each generation of the reference
// server leaves them, fills them the way it writes, and checks that our store, opened
// on them, serves every key, value, version, global version and the listing order, and
// leaves the reference server's bookkeeping alone.
func TestReferenceDatabase(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		fixture      string
		extraIndexes []string
	}{
		{fixture: "reference_v0.sql"},
		{
			fixture:      "reference_v1.sql",
			extraIndexes: []string{"CREATE INDEX ON vss_db USING btree (user_token, store_id, created_at, key)"},
		},
		{fixture: "reference_v2.sql"},
	} {
		t.Run(c.fixture, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := pgtest.NewDatabase(t)
			execSQL(t, url, readTestdata(t, c.fixture))
			execSQL(t, url, readTestdata(t, "reference_data.sql"))
			bookkeeping := referenceBookkeeping(t, url)

			s := openStore(t, url)
			checkSchema(t, url, c.extraIndexes...)
			if got := referenceBookkeeping(t, url); !slices.Equal(got, bookkeeping) {
				t.Errorf("reference bookkeeping changed: %v then %v", bookkeeping, got)
			}

			for _, rs := range referenceStores {
				for _, size := range []int{1, 3, 100} {
					keys, global := listAll(t, s, rs.user, rs.store, "", size)
					if !slices.Equal(keys, rs.keys) || global != rs.global {
						t.Errorf("%s/%s, pages of %d: %v global %d, want %v global %d",
							rs.user, rs.store, size, keys, global, rs.keys, rs.global)
					}
				}
				for key, value := range rs.values {
					got := get(t, s, rs.user, rs.store, key)
					if string(got.Value) != value || !slices.Contains(rs.keys, fmt.Sprintf("%s@%d", key, got.Version)) {
						t.Errorf("%s/%s/%s = %q@%d", rs.user, rs.store, key, got.Value, got.Version)
					}
				}
				gv, err := s.Get(ctx, rs.user, rs.store, storage.GlobalVersionKey)
				switch {
				case rs.global == 0 && err == nil, rs.global != 0 && (err != nil || gv.Version != rs.global):
					t.Errorf("%s/%s global_version = %+v, %v; want %d", rs.user, rs.store, gv, err, rs.global)
				}
			}

			// Our writes carry on from the reference server's: a new key lists first, an
			// update keeps its place, a version check sees the reference versions.
			if err := s.Put(ctx, "alice", storage.PutRequest{StoreID: "wallet", Puts: []storage.KeyValue{
				kv("k5", 0, "k5-a"), kv("k3", 3, "k3-d"), kv(storage.GlobalVersionKey, 5, ""),
			}}); err != nil {
				t.Fatalf("put after migration: %v", err)
			}
			keys, global := listAll(t, s, "alice", "wallet", "", 2)
			if want := []string{"k5@1", "k1@1", "k4@1", "k3@4", "k2@2"}; !slices.Equal(keys, want) || global != 6 {
				t.Errorf("after our put: %v global %d, want %v global 6", keys, global, want)
			}
			// An empty store id is allowed, whatever the first reference releases said.
			put(t, s, "alice", "", kv("k", 0, ""))
		})
	}
}

// referenceBookkeeping returns the rows of the reference server's bookkeeping tables.
func referenceBookkeeping(t *testing.T, url string) []string {
	t.Helper()
	rows, err := connect(t, url).Query(context.Background(), `
		SELECT 'version ' || db_version FROM vss_db_version
		UNION ALL SELECT 'upgrade ' || upgrade_from FROM vss_db_upgrades`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
