package postgres

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"testing"
	"time"

	pgdb "github.com/govss/vss/db/postgres"
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

// TestAdmitKeepsTheLockOrder: within one user's store, a batch takes a request only if
// every key it does not hold yet comes after all it holds; other users' stores are
// independent, and the first request always joins.
func TestAdmitKeepsTheLockOrder(t *testing.T) {
	put := func(user, store string, keys ...string) *write {
		return &write{put: &pgdb.PutObjectsParams{UserToken: user, StoreID: store, PutKeys: keys}, first: slices.Min(keys)}
	}
	ws := []*write{
		put("u", "s", "global_version", "k1"), // joins first
		put("u", "s", "global_version", "k2"), // global_version is held, k2 > k1: joins
		put("u", "s", "h", "z"),               // h < k2 and not held: waits
		put("u", "s", "k2"),                   // held: joins
		put("u", "t", "a"),                    // another store: joins
		put("v", "s", "a", "b"),               // another user: joins
		{del: &pgdb.DeleteObjectParams{UserToken: "u", StoreID: "s", Key: "k3"}, first: "k3"}, // after k2: joins
	}
	order := []int{0, 1, 2, 3, 4, 5, 6}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(ws[a].user(), ws[b].user()), cmp.Compare(ws[a].storeID(), ws[b].storeID()), cmp.Compare(ws[a].first, ws[b].first))
	})
	outs := make([]error, len(ws))
	got := admit(ws, order, outs)
	slices.Sort(got)
	if want := []int{0, 1, 3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Errorf("admitted %v, want %v", got, want)
	}
	if outs[2] != groupcommit.Later {
		t.Errorf("the request out of order: %v, want groupcommit.Later", outs[2])
	}
}

// TestLargeWritesCommitBesideABatch: while a batch is in flight, a write of soloBytes or
// more commits at once on a connection of its own, where a small write waits for the
// next batch; both are then stored as written.
func TestLargeWritesCommitBesideABatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newStore(t, WithGroupCommit(true))
	g := groupcommittest.NewGate()
	s.group = groupcommit.New(maxBatch, groupcommittest.Gated(g, s.commitBatch))

	leadDone := make(chan error, 1)
	g.Hold(t, func() {
		leadDone <- s.Put(ctx, "lead", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{{Key: "k", Version: -1, Value: []byte("l")}}})
	})
	smallDone := make(chan error, 1)
	go func() {
		smallDone <- s.Put(ctx, "small", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{{Key: "k", Version: -1, Value: []byte("s")}}})
	}()
	large := bytes.Repeat([]byte{7}, soloBytes)
	// The large write names the key the held batch writes for another user, and one of
	// its own user's that a small request in the queue writes too.
	largeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Put(largeCtx, "small", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{{Key: "big", Version: 0, Value: large}}}); err != nil {
		t.Fatalf("large write while a batch is held: %v", err)
	}
	select {
	case err := <-smallDone:
		t.Fatalf("a small write committed while the batch was held (%v): it should wait for the next batch", err)
	default:
	}
	g.Release()
	for name, c := range map[string]chan error{"lead": leadDone, "small": smallDone} {
		if err := <-c; err != nil {
			t.Errorf("%s write: %v", name, err)
		}
	}
	got, err := s.Get(ctx, "small", "s", "big")
	if err != nil || got.Version != 1 || !bytes.Equal(got.Value, large) {
		t.Errorf("large value: version %d, %d bytes, err %v; want version 1, %d bytes", got.Version, len(got.Value), err, len(large))
	}
	if st := s.GroupCommitStats(); st.Writes != 2 {
		t.Errorf("the group commit committed %d writes, want 2 (the large one alone, outside it)", st.Writes)
	}
}
