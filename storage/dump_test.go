package storage

import "testing"

// TestExportPageLen: a page takes entries while those before total less than the
// budget, so it holds at most the budget plus one value, and always one entry.
func TestExportPageLen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sizes  []int64
		budget int64
		want   int
	}{
		{nil, 10, 0},
		{[]int64{100}, 10, 1},
		{[]int64{100, 1}, 10, 1},
		{[]int64{0, 0, 0}, 10, 3},
		{[]int64{4, 5, 1, 1}, 10, 3},
		{[]int64{4, 6, 1}, 10, 2},
		{[]int64{9, 9, 9}, 10, 2},
		{[]int64{1, 1, 1, 1}, 1000, 4},
	} {
		if got := ExportPageLen(tc.sizes, tc.budget); got != tc.want {
			t.Errorf("ExportPageLen(%v, %d) = %d, want %d", tc.sizes, tc.budget, got, tc.want)
		}
	}
}
