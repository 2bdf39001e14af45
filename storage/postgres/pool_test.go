package postgres

import (
	"context"
	"testing"

	"github.com/govss/vss/internal/pgtest"
)

// TestPoolSize checks where the pool's size limit comes from: DefaultMaxConns, then
// WithMaxConns, and the URL's pool_max_conns over both.
func TestPoolSize(t *testing.T) {
	url := pgtest.NewDatabase(t)
	for _, tc := range []struct {
		name string
		url  string
		opts []Option
		want int32
	}{
		{"default", url, nil, DefaultMaxConns},
		{"option", url, []Option{WithMaxConns(7)}, 7},
		{"zero option keeps the default", url, []Option{WithMaxConns(0)}, DefaultMaxConns},
		{"URL parameter", url + "&pool_max_conns=3", nil, 3},
		{"URL parameter wins over the option", url + "&pool_max_conns=3", []Option{WithMaxConns(7)}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.url, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.PoolStats().MaxConns; got != tc.want {
				t.Errorf("MaxConns = %d, want %d", got, tc.want)
			}
		})
	}
}
