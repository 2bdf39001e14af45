// Package groupcommittest checks a store's group commit: requests that fail inside a
// batch (a version conflict, a quota refused, a statement the database rejects) must not
// change what their neighbours in the batch get, nor what they write.
package groupcommittest

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/internal/groupcommit"
)

// Enabled is whether the stores' tests commit concurrent writes together: yes, as the
// server does by default, unless the environment variable VSS_GROUP_COMMIT is off.
func Enabled() bool {
	switch os.Getenv("VSS_GROUP_COMMIT") {
	case "off", "false", "0":
		return false
	}
	return true
}

// Gate holds the first batch a queue commits once the gate is armed until it is
// released, so that the writes that arrive meanwhile form one batch together.
type Gate struct {
	entered, release chan struct{}
	armed            atomic.Bool
}

// NewGate returns a gate that lets every batch through until it is armed.
func NewGate() *Gate {
	return &Gate{entered: make(chan struct{}), release: make(chan struct{})}
}

// Hold arms g and returns once the first batch committed after that is held by it:
// writes that arrive before Release wait for the next batch.
func (g *Gate) Hold(t testing.TB, submit func()) {
	t.Helper()
	g.armed.Store(true)
	go submit()
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no batch reached the gate")
	}
}

// Release lets the held batch go on.
func (g *Gate) Release() { close(g.release) }

// Gated returns commit, whose first batch after g was armed waits for g's release.
func Gated[W any](g *Gate, commit groupcommit.Commit[W]) groupcommit.Commit[W] {
	return func(ctx context.Context, batch []W) []error {
		if g.armed.CompareAndSwap(true, false) {
			close(g.entered)
			<-g.release
		}
		return commit(ctx, batch)
	}
}

// Request is one write of the batch and what it must get.
type Request struct {
	Name string
	User string
	// Put is the request, unless Delete is set: then it is a DeleteObject of
	// Delete.Key at Delete.Version in store Store.
	Put    storage.PutRequest
	Delete *storage.KeyValue
	Store  string
	// Want checks the outcome.
	Want func(err error) bool
}

// Is wants errors.Is(err, target) (nil: success).
func Is(target error) func(error) bool {
	return func(err error) bool {
		if target == nil {
			return err == nil
		}
		return errors.Is(err, target)
	}
}

// Internal wants an error that is none of the storage sentinels.
func Internal(err error) bool {
	return err != nil && !errors.Is(err, storage.ErrConflict) && !errors.Is(err, storage.ErrQuotaExceeded) &&
		!errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrUnavailable)
}

// Store is what the check needs of a store with a gated group commit.
type Store interface {
	storage.Store
	GroupCommitStats() storage.GroupCommitStats
}

func kv(key string, version int64, value string) storage.KeyValue {
	return storage.KeyValue{Key: key, Version: version, Value: []byte(value)}
}

// CheckNeighbours commits, in one batch, requests that succeed next to requests that
// fail in every way a store knows (a conflict the statement reports, a conflict the
// database raises after the request wrote part of its items, a conflict with another
// request of the same batch, and extra, the store's own failures), and checks that every
// request gets the outcome it has alone and that exactly the successful ones are
// stored. s's group commit must be gated by g, and pending must return how many writes
// wait for a batch. With quota set, s must enforce it (at most 6 keys per user).
func CheckNeighbours(t *testing.T, s Store, g *Gate, pending func() int, quota bool, extra ...Request) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Put(ctx, "lead", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("warm", -1, "w")}}))
	must(s.Put(ctx, "b", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("y", 0, "y1")}}))
	must(s.Put(ctx, "c", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("q", 0, "q1")}}))
	must(s.Put(ctx, "e", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("gone", 0, "g")}}))
	if quota {
		must(s.Put(ctx, "full", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("f1", 0, "f"), kv("f2", 0, "f")}}))
	}
	before := s.GroupCommitStats()

	reqs := []Request{
		{Name: "create", User: "a", Put: storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("x", 0, "x-from-create")}}},
		{Name: "create with global version", User: "h", Put: storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{
			kv("z", -1, "z1"), kv(storage.GlobalVersionKey, 0, "")}}, Want: Is(nil)},
		{Name: "stale update", User: "b", Put: storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("y", 5, "y-stale")}},
			Want: Is(storage.ErrConflict)},
		{Name: "written then conflict", User: "c", Put: storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{
			kv("p", -1, "p-leaked"), kv("q", 0, "q-leaked")}}, Want: Is(storage.ErrConflict)},
		{Name: "delete of a missing key", User: "c", Put: storage.PutRequest{StoreID: "t", Puts: []storage.KeyValue{
			kv("r", -1, "r-leaked")}, Deletes: []storage.KeyValue{kv("never", -1, "")}}, Want: Is(storage.ErrConflict)},
		{Name: "standalone delete", User: "e", Store: "s", Delete: &storage.KeyValue{Key: "gone", Version: 1}, Want: Is(nil)},
		{Name: "other user", User: "f", Put: storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("x", 0, "x-of-f")}}, Want: Is(nil)},
		{Name: "update", User: "b", Put: storage.PutRequest{StoreID: "s2", Puts: []storage.KeyValue{kv("y", -1, "y2")}}, Want: Is(nil)},
	}
	// Two creates of one key in one batch: exactly one of them wins.
	reqs = append(reqs, Request{Name: "create again", User: "a", Put: storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("x", 0, "x-from-create-again")}}})
	if quota {
		reqs = append(reqs,
			Request{Name: "over quota", User: "full", Put: storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{
				kv("n1", 0, "n"), kv("n2", 0, "n"), kv("n3", 0, "n"), kv("n4", 0, "n"), kv("n5", 0, "n")}}, Want: Is(storage.ErrQuotaExceeded)},
			Request{Name: "within quota", User: "full", Put: storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{
				kv("w1", 0, "w")}}, Want: Is(nil)})
	}
	reqs = append(reqs, extra...)

	leadDone := make(chan error, 1)
	g.Hold(t, func() {
		leadDone <- s.Put(ctx, "lead", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("lead", -1, "l")}})
	})
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			if r.Delete != nil {
				errs[i] = s.Delete(ctx, r.User, r.Store, r.Delete.Key, r.Delete.Version)
				return
			}
			errs[i] = s.Put(ctx, r.User, r.Put)
		})
	}
	for pending() < len(reqs) {
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d requests queued", pending(), len(reqs))
		}
		time.Sleep(time.Millisecond)
	}
	g.Release()
	wg.Wait()
	must(<-leadDone)

	stats := s.GroupCommitStats()
	if got := stats.Largest; got < int64(len(reqs)) {
		t.Errorf("largest batch %d, want the %d requests together", got, len(reqs))
	}
	t.Logf("batches %d, writes %d (shared %d), largest %d", stats.Batches-before.Batches, stats.Writes-before.Writes,
		stats.Shared-before.Shared, stats.Largest)

	wins := 0
	for i, r := range reqs {
		switch {
		case r.Want == nil:
			if errs[i] == nil {
				wins++
			} else if !errors.Is(errs[i], storage.ErrConflict) {
				t.Errorf("%s: %v, want success or a conflict", r.Name, errs[i])
			}
		case !r.Want(errs[i]):
			t.Errorf("%s: got %v", r.Name, errs[i])
		}
	}
	if wins != 1 {
		t.Errorf("%d of the two creates of one key won, want 1", wins)
	}

	// What is stored is exactly what the successful requests wrote.
	want := func(user, store, key string, version int64, value string) {
		t.Helper()
		got, err := s.Get(ctx, user, store, key)
		if err != nil || got.Version != version || string(got.Value) != value {
			t.Errorf("%s/%s/%s = %d %q, %v; want version %d %q", user, store, key, got.Version, got.Value, err, version, value)
		}
	}
	missing := func(user, store, key string) {
		t.Helper()
		if got, err := s.Get(ctx, user, store, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s/%s/%s = %d %q, %v; want no such key", user, store, key, got.Version, got.Value, err)
		}
	}
	x, err := s.Get(ctx, "a", "s", "x")
	if err != nil || x.Version != 1 || (string(x.Value) != "x-from-create" && string(x.Value) != "x-from-create-again") {
		t.Errorf("a/s/x = %d %q, %v; want version 1 from one of the creates", x.Version, x.Value, err)
	}
	want("h", "s", "z", 1, "z1")
	want("h", "s", storage.GlobalVersionKey, 1, "")
	want("b", "s", "y", 1, "y1")
	want("b", "s2", "y", 1, "y2")
	missing("c", "s", "p")
	want("c", "s", "q", 1, "q1")
	missing("c", "t", "r")
	missing("c", "t", "never")
	missing("e", "s", "gone")
	want("f", "s", "x", 1, "x-of-f")
	want("lead", "s", "lead", 1, "l")
	if quota {
		missing("full", "s", "n1")
		want("full", "s", "w1", 1, "w")
		// The usage counted for the user is right: 3 keys stored, 3 more fit.
		must(s.Put(ctx, "full", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("m1", 0, "m"), kv("m2", 0, "m"), kv("m3", 0, "m")}}))
		if err := s.Put(ctx, "full", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("m4", 0, "m")}}); !errors.Is(err, storage.ErrQuotaExceeded) {
			t.Errorf("a 7th key: %v, want the quota exceeded", err)
		}
	}
}
