package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// TestNewDatabase checks that each call gives a fresh, writable database of its own.
func TestNewDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	seen := map[string]bool{}
	for range 3 {
		u := NewDatabase(t)
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatalf("connect %s: %v", u, err)
		}
		t.Cleanup(func() { _ = conn.Close(ctx) })
		var name string
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if seen[name] {
			t.Fatalf("database %s handed out twice", name)
		}
		seen[name] = true
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Fatalf("database %s is not empty: %d tables", name, tables)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE x (id int)"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDatabaseName checks the names stay valid identifiers within PostgreSQL's limit.
func TestDatabaseName(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"TestX", "TestA/sub test with spaces/and-%_'\"", string(make([]byte, 200))} {
		got := databaseName(in)
		if len(got) > 63 {
			t.Errorf("databaseName(%q) = %q: longer than 63 bytes", in, got)
		}
		for _, r := range got {
			if !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
				t.Errorf("databaseName(%q) = %q: character %q", in, got, r)
			}
		}
	}
}
