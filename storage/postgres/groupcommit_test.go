package postgres

import (
	"testing"

	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/internal/groupcommit"
	"github.com/govss/vss/storage/internal/groupcommit/groupcommittest"
)

// TestGroupCommitNeighbours commits requests that fail in every way next to requests
// that succeed, in one batch, with quotas off and on: each gets its own outcome and
// writes exactly what it writes alone. Two requests here make PostgreSQL raise an error
// (a conflict found after writing part of the request, and a key PostgreSQL cannot
// store), so the batch is rolled back twice and the remaining requests end up each in a
// transaction of its own; with one such request the others commit again as a batch.
func TestGroupCommitNeighbours(t *testing.T) {
	badKey := groupcommittest.Request{Name: "key PostgreSQL refuses", User: "g", Put: storage.PutRequest{StoreID: "s",
		Puts: []storage.KeyValue{{Key: "nul\x00key", Version: -1, Value: []byte("v")}}}, Want: groupcommittest.Internal}
	for _, tc := range []struct {
		name  string
		quota bool
		extra []groupcommittest.Request
	}{
		{"one failing statement", false, nil},
		{"two failing statements", false, []groupcommittest.Request{badKey}},
		{"quota", true, []groupcommittest.Request{badKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var opts []Option
			if tc.quota {
				opts = append(opts, WithQuota(storage.Quota{MaxKeys: 6}))
			}
			s := newStore(t, append(opts, WithGroupCommit(true))...)
			g := groupcommittest.NewGate()
			s.group = groupcommit.New(maxBatch, groupcommittest.Gated(g, s.commitBatch))
			groupcommittest.CheckNeighbours(t, s, g, s.group.Pending, tc.quota, tc.extra...)
		})
	}
}
