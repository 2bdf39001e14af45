package postgres

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/govss/vss/internal/pgtest"
	vsssql "github.com/govss/vss/sql"
)

// column is one row of the catalog description of vss_db.
type column struct {
	Name     string
	Type     string
	Nullable bool
	Default  string
}

// describeSchema reads the layout of vss_db from the catalog: its columns, the
// definitions of its indexes and of its check constraints.
func describeSchema(t *testing.T, url string) (cols []column, indexes, checks []string) {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, url)
	rows, err := conn.Query(ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
		       COALESCE(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute a
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = 'vss_db'::regclass AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.Name, &c.Type, &c.Nullable, &c.Default); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	scanStrings := func(sql string) []string {
		rows, err := conn.Query(ctx, sql)
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
	// Index definitions without their names, which the contract does not fix.
	indexes = scanStrings(`
		SELECT regexp_replace(pg_get_indexdef(indexrelid), '^CREATE (UNIQUE )?INDEX \S+ ON \S+', 'CREATE \1INDEX ON vss_db')
		FROM pg_index WHERE indrelid = 'vss_db'::regclass`)
	checks = scanStrings(`
		SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = 'vss_db'::regclass AND contype = 'c'`)
	return cols, indexes, checks
}

// The layout of the contract's reference schema, as the catalog shows it.
var (
	wantColumns = []column{
		{"user_token", "character varying(120)", false, ""},
		{"store_id", "character varying(120)", false, ""},
		{"key", "character varying(600)", false, ""},
		{"value", "bytea", true, ""},
		{"version", "bigint", false, ""},
		{"created_at", "timestamp with time zone", false, ""},
		{"last_updated_at", "timestamp with time zone", true, ""},
		{"sort_order", "bigint", false, "nextval('vss_db_sort_order_seq'::regclass)"},
	}
	wantIndexes = []string{
		"CREATE INDEX ON vss_db USING btree (user_token, store_id, sort_order DESC) INCLUDE (key, version)",
		"CREATE UNIQUE INDEX ON vss_db USING btree (sort_order)",
		"CREATE UNIQUE INDEX ON vss_db USING btree (user_token, store_id, key)",
	}
	wantChecks = []string{"CHECK (((user_token)::text <> ''::text))"}
)

func checkSchema(t *testing.T, url string, extraIndexes ...string) {
	t.Helper()
	cols, indexes, checks := describeSchema(t, url)
	if !slices.Equal(cols, wantColumns) {
		t.Errorf("columns:\n got %v\nwant %v", cols, wantColumns)
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(wantIndexes), extraIndexes...)))
	if !slices.Equal(indexes, want) {
		t.Errorf("indexes:\n got %q\nwant %q", indexes, want)
	}
	if !slices.Equal(checks, wantChecks) {
		t.Errorf("check constraints:\n got %q\nwant %q", checks, wantChecks)
	}
	// The primary key is a constraint, not only a unique index.
	var pk string
	if err := connect(t, url).QueryRow(context.Background(), `
		SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = 'vss_db'::regclass AND contype = 'p'`).Scan(&pk); err != nil {
		t.Fatalf("primary key: %v", err)
	}
	if pk != "PRIMARY KEY (user_token, store_id, key)" {
		t.Errorf("primary key = %q", pk)
	}
}

// appliedMigrations reads our bookkeeping: version to time of application.
func appliedMigrations(t *testing.T, url string) map[int32]time.Time {
	t.Helper()
	rows, err := connect(t, url).Query(context.Background(), "SELECT version, applied_at FROM vss_schema_migrations")
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32]time.Time{}
	for rows.Next() {
		var v int32
		var at time.Time
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		got[v] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMigrateEmptyDatabase(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	openStore(t, url)
	checkSchema(t, url)

	ms, err := loadMigrations(vsssql.PostgresMigrations)
	if err != nil {
		t.Fatal(err)
	}
	applied := appliedMigrations(t, url)
	if len(applied) != len(ms) {
		t.Errorf("applied %v, want the %d migrations", applied, len(ms))
	}
	// The reference server's bookkeeping is its own: we do not create it.
	var n int
	if err := connect(t, url).QueryRow(context.Background(),
		"SELECT count(*) FROM pg_tables WHERE tablename IN ('vss_db_version', 'vss_db_upgrades')").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("created %d reference bookkeeping tables", n)
	}
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	s := openStore(t, url)
	put(t, s, "u", "s", kv("a", 0, "1"))
	before := appliedMigrations(t, url)

	s2 := openStore(t, url)
	if after := appliedMigrations(t, url); !maps.EqualFunc(before, after, time.Time.Equal) {
		t.Errorf("second Open changed the bookkeeping: %v then %v", before, after)
	}
	checkSchema(t, url)
	if got := get(t, s2, "u", "s", "a"); got.Version != 1 || string(got.Value) != "1" {
		t.Errorf("after second Open, a = %+v", got)
	}
}

func TestMigrateConcurrentOpens(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(context.Background(), url, quiet)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	checkSchema(t, url)
	ms, _ := loadMigrations(vsssql.PostgresMigrations)
	if applied := appliedMigrations(t, url); len(applied) != len(ms) {
		t.Errorf("applied %v, want each of the %d migrations once", applied, len(ms))
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	openStore(t, url)
	execSQL(t, url, "INSERT INTO vss_schema_migrations (version, name) VALUES (9999, '9999_future.sql')")
	if s, err := Open(context.Background(), url, quiet); err == nil {
		_ = s.Close()
		t.Fatal("Open succeeded on a schema newer than the server's")
	}
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	ms, err := loadMigrations(vsssql.PostgresMigrations)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].version != 1 {
		t.Fatalf("migrations = %v, want 0001 first", ms)
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].version <= ms[i-1].version {
			t.Errorf("migrations out of order: %s after %s", ms[i].name, ms[i-1].name)
		}
	}
}
