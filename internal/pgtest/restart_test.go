package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestClusterStopStart checks that a Cluster refuses connections while stopped, comes
// back on the same URL, and keeps every commit across an immediate and a fast stop.
func TestClusterStopStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := NewCluster(t)
	exec := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, c.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec("CREATE TABLE x (id int)")
	for i, immediate := range []bool{true, false} {
		exec("INSERT INTO x VALUES (1)")
		c.Stop(immediate)
		c.Stop(immediate) // stopping a stopped cluster does nothing
		if err := ping(c.URL()); err == nil {
			t.Fatalf("stopped (immediate %v), yet it accepts connections", immediate)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, c.URL())
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = conn.QueryRow(ctx, "SELECT count(*) FROM x").Scan(&n)
		conn.Close(ctx)
		if err != nil || n != i+1 {
			t.Fatalf("after a stop (immediate %v): %d rows, %v; want %d", immediate, n, err, i+1)
		}
	}
}
