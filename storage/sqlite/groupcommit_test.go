package sqlite

import (
	"testing"

	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/internal/groupcommit"
	"github.com/govss/vss/storage/internal/groupcommit/groupcommittest"
)

// TestGroupCommitNeighbours commits requests that fail in every way next to requests
// that succeed, in one transaction, with quotas off and on: each gets its own outcome
// and writes exactly what it writes alone. Here a request that wrote part of its items
// before it failed (an unconditional put, then a create of a key that exists, which
// SQLite refuses with a constraint error) is undone by its savepoint alone.
func TestGroupCommitNeighbours(t *testing.T) {
	for _, quota := range []bool{false, true} {
		name := "no quota"
		if quota {
			name = "quota"
		}
		t.Run(name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, s *Store) {
				if quota {
					if err := s.SetQuota(t.Context(), storage.Quota{MaxKeys: 6}); err != nil {
						t.Fatal(err)
					}
				}
				g := groupcommittest.NewGate()
				s.group = groupcommit.New(maxBatch, groupcommittest.Gated(g, s.commitBatch))
				groupcommittest.CheckNeighbours(t, s, g, s.group.Pending, quota)
			})
		})
	}
}
