package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"

	"github.com/govss/vss/dump"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/buildinfo"
)

// This file moves data from and to a server that only speaks the VSS HTTP API (the
// reference server), with nothing but its four operations: a dump assembled from list
// and get, and a dump imported with puts of new keys.

// kvSource reads the named stores of a server key by key and writes them as a dump.
type kvSource struct {
	api kvAPI
	// storeIDs are the stores to read, in increasing order, each once: the API cannot
	// list them.
	storeIDs []string
	warn     func(format string, args ...any)
	progress *progress
}

// kvSource returns the source of the stores named with --store-id on the server e.
func (c *command) kvSource(e endpoint) (*kvSource, error) {
	if !c.set["store-id"] {
		return nil, usagef("%s only speaks the VSS HTTP API, which cannot list a user's stores: name each store to move with --store-id (repeat it; --store-id \"\" is the empty store id)", e.url)
	}
	return &kvSource{api: c.newVSSHTTP(e), storeIDs: c.namedStores(), warn: c.warnf, progress: c.progress}, nil
}

// warnf prints a warning on standard error, on a line of its own.
func (c *command) warnf(format string, args ...any) {
	c.progress.done()
	fmt.Fprintf(c.stderr, "warning: "+format+"\n", args...)
}

// kvHeader is the header of a dump assembled from list and get: the versions and the
// listing order are the server's, but the stores were read key by key, not in one
// snapshot, and a global version of 0 reads as one never set, so global versions are not
// carried as stored.
func kvHeader() dump.Header {
	return dump.Header{Producer: "vssctl " + buildinfo.Read(version, commit, buildDate).Version, Created: time.Now().UTC(), Scope: dump.ScopeUser,
		Snapshot: false, ListingOrder: true, Versions: true, GlobalVersions: false}
}

// writeDump writes the dump of the stores to w.
func (s *kvSource) writeDump(ctx context.Context, w io.Writer) error {
	dw, err := dump.NewWriter(w, kvHeader())
	if err != nil {
		return err
	}
	for _, id := range s.storeIDs {
		if err := s.writeStore(ctx, dw, id); err != nil {
			return err
		}
	}
	_, err = dw.Close()
	return err
}

// writeStore writes one store: its keys in creation order (the reverse of the listing,
// whose names alone are held in memory), each read with its version and value.
func (s *kvSource) writeStore(ctx context.Context, dw *dump.Writer, id string) error {
	keys, err := listKeys(ctx, s.api, id, func(n int) { s.progress.show("store %q: listed %d keys", id, n) })
	if err != nil {
		return fmt.Errorf("listing store %q: %w", id, err)
	}
	global, err := globalVersion(ctx, s.api, id)
	if err != nil {
		return fmt.Errorf("reading the global version of store %q: %w", id, err)
	}
	if len(keys) == 0 && global == 0 {
		s.warn("store %q holds nothing (or does not exist): it is not in the dump", id)
		return nil
	}
	// The API reads a global version never set as 0: only one above 0 is known to exist.
	st := dump.Store{ID: id, GlobalVersion: global, HasGlobalVersion: global > 0}
	if err := dw.BeginStore(st); err != nil {
		return err
	}
	for _, key := range keys {
		resp, err := s.api.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: id, Key: key})
		if connect.CodeOf(err) == connect.CodeNotFound {
			s.warn("store %q: key %q was deleted after it was listed: it is not in the dump", id, key)
			continue
		}
		if err != nil {
			return fmt.Errorf("reading key %q of store %q: %w", key, id, err)
		}
		kv := resp.GetValue()
		if err := dw.Entry(dump.Entry{Key: key, Version: kv.GetVersion(), Value: kv.GetValue()}); err != nil {
			return fmt.Errorf("store %q, key %q: %w", id, key, err)
		}
	}
	_, err = dw.EndStore()
	return err
}

// maxGlobalBumps is the largest global version a kvTarget sets: the API sets it only by
// bumping it one at a time, one request each.
const maxGlobalBumps = 1000

// Batches of a kvTarget: a put carries at most this many keys, and past the first key
// at most this many bytes of keys and values.
const (
	kvBatchItems = maxItemsPerRequest
	kvBatchBytes = 4 << 20
)

// kvTarget imports a dump into a server that cannot keep versions: each entry is
// created as a new key (a put of version 0, which the server stores as version 1), in
// dump order so that the listing order is kept. Each store must be empty, or hold the
// first keys of the dump's store from an earlier run, which are skipped. The global
// versions, which cannot be taken back, are set once the whole dump has been read and
// verified, and each store is then read back.
type kvTarget struct {
	api    kvAPI
	verify bool
	warn   func(format string, args ...any)

	store   dump.Store
	present []string // the keys the store held when its import began, oldest first
	global  int64    // the store's global version when its import began
	next    int      // entries of the store read from the dump so far
	batch   []*vssv1.KeyValue
	bytes   int
	want    *dump.StoreHash // the dump's store, keys and values in order, without versions

	written, skipped uint64
	// wrote are the keys this run created, by store, so that undo can remove them.
	wrote map[string][]string
	// done are the stores whose keys are written, for finish.
	done []kvStore
	// unsetGlobals are the stores whose global version could not be set.
	unsetGlobals []string
}

// visit handles one record of the dump.
func (t *kvTarget) visit(ctx context.Context, k dump.Kind, dr *dump.Reader) error {
	switch k {
	case 0:
		return userDump(dr.Header())
	case dump.KindStore:
		return t.begin(ctx, dr.Store())
	case dump.KindEntry:
		return t.entry(ctx, dr.Entry())
	case dump.KindStoreEnd:
		return t.end(ctx)
	case dump.KindEnd:
		return t.finish(ctx)
	}
	return nil
}

// kvStore is a store whose keys a kvTarget has written.
type kvStore struct {
	store dump.Store
	// global is the store's global version when its import began.
	global int64
	// want is the checksum of the dump's store without versions (kvTarget.want).
	want dump.Sum
}

// begin opens a store: it lists what the target holds there.
func (t *kvTarget) begin(ctx context.Context, s dump.Store) error {
	t.store, t.next, t.batch, t.bytes = s, 0, t.batch[:0], 0
	t.want = dump.NewStoreHash(dump.Store{ID: s.ID})
	var err error
	if t.present, err = listKeys(ctx, t.api, s.ID, nil); err != nil {
		return fmt.Errorf("listing store %q on the target: %w", s.ID, err)
	}
	if t.global, err = globalVersion(ctx, t.api, s.ID); err != nil {
		return fmt.Errorf("reading the global version of store %q on the target: %w", s.ID, err)
	}
	if t.global > s.GlobalVersion {
		return notEmpty(s.ID, fmt.Sprintf("its global version is %d, above the dump's %d", t.global, s.GlobalVersion))
	}
	return nil
}

// notEmpty is the refusal of a store that holds data the import did not write.
func notEmpty(storeID, why string) error {
	return exitError{exitPrecondition, fmt.Errorf("store %q on the target is not empty (%s): an import writes only into empty stores. "+
		"Delete it first if it holds nothing you need (export it, then delete its keys), or import elsewhere", storeID, why)}
}

// entry writes the next entry of the store, or skips it when an earlier run wrote it.
func (t *kvTarget) entry(ctx context.Context, e dump.Entry) error {
	t.want.Add(dump.Entry{Key: e.Key, Value: e.Value})
	i := t.next
	t.next++
	if i < len(t.present) {
		if t.present[i] != e.Key {
			return notEmpty(t.store.ID, fmt.Sprintf("it holds %d keys that are not the first keys of the dump's store", len(t.present)))
		}
		t.skipped++
		return nil
	}
	t.batch = append(t.batch, &vssv1.KeyValue{Key: e.Key, Version: 0, Value: e.Value})
	t.bytes += len(e.Key) + len(e.Value)
	if len(t.batch) >= kvBatchItems || t.bytes >= kvBatchBytes {
		return t.flush(ctx)
	}
	return nil
}

// flush creates the keys of the batch, in order, in one request.
func (t *kvTarget) flush(ctx context.Context) error {
	if len(t.batch) == 0 {
		return nil
	}
	_, err := t.api.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: t.store.ID, TransactionItems: t.batch})
	if connect.CodeOf(err) == connect.CodeAborted {
		// A retried attempt conflicts with its own first attempt when that one committed.
		err = t.checkCommitted(ctx, err)
	}
	if err != nil {
		return fmt.Errorf("writing store %q on the target: %w", t.store.ID, err)
	}
	t.written += uint64(len(t.batch))
	if t.wrote == nil {
		t.wrote = map[string][]string{}
	}
	for _, kv := range t.batch {
		t.wrote[t.store.ID] = append(t.wrote[t.store.ID], kv.GetKey())
	}
	clear(t.batch)
	t.batch, t.bytes = t.batch[:0], 0
	return nil
}

// checkCommitted tells whether the batch whose put conflicted is in the store after
// all, as its last keys: then it returns nil, and conflict otherwise.
func (t *kvTarget) checkCommitted(ctx context.Context, conflict error) error {
	keys, err := listKeys(ctx, t.api, t.store.ID, nil)
	if err != nil {
		return conflict
	}
	if len(keys) != t.next {
		return fmt.Errorf("%w (another client writes to the store: stop it, then run the command again)", conflict)
	}
	for i, kv := range t.batch {
		if keys[len(keys)-len(t.batch)+i] != kv.GetKey() {
			return fmt.Errorf("%w (another client writes to the store: stop it, then run the command again)", conflict)
		}
	}
	return nil
}

// end closes a store: the rest of its keys.
func (t *kvTarget) end(ctx context.Context) error {
	if err := t.flush(ctx); err != nil {
		return err
	}
	if t.next < len(t.present) {
		return notEmpty(t.store.ID, fmt.Sprintf("it holds %d keys, more than the dump's store", len(t.present)))
	}
	t.done = append(t.done, kvStore{store: t.store, global: t.global, want: t.want.Sum()})
	return nil
}

// finish sets the global version of each store and reads it back, once the dump has
// been read to its end and verified.
func (t *kvTarget) finish(ctx context.Context) error {
	for _, s := range t.done {
		t.store, t.global = s.store, s.global
		global, err := t.setGlobal(ctx)
		if err != nil {
			return err
		}
		if t.verify {
			if err := t.readBack(ctx, global, s.want); err != nil {
				return err
			}
		}
	}
	return nil
}

// setGlobal brings the store's global version to the dump's by checked bumps of one,
// from what the store holds, and returns the global version the store should now hold.
// One above maxGlobalBumps is left as it is, with a warning.
func (t *kvTarget) setGlobal(ctx context.Context) (int64, error) {
	target := t.store.GlobalVersion
	if target-t.global > maxGlobalBumps {
		t.unsetGlobals = append(t.unsetGlobals, t.store.ID)
		t.warn("store %q: the global version is left at %d, not set to %d: the VSS HTTP API sets it only by bumping it one at a time, one request each, and vssctl makes at most %d",
			t.store.ID, t.global, target, maxGlobalBumps)
		return t.global, nil
	}
	for v := t.global; v < target; v++ {
		expect := v
		_, err := t.api.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: t.store.ID, GlobalVersion: &expect})
		if connect.CodeOf(err) == connect.CodeAborted {
			// Committed by an attempt whose answer was lost, or written by another client.
			if now, gerr := globalVersion(ctx, t.api, t.store.ID); gerr == nil && now == v+1 {
				err = nil
			}
		}
		if err != nil {
			return 0, fmt.Errorf("setting the global version of store %q on the target: %w", t.store.ID, err)
		}
	}
	return max(target, t.global), nil
}

// readBack reads the store back from the target and compares its keys, values, order
// and global version with the dump's.
func (t *kvTarget) readBack(ctx context.Context, global int64, want dump.Sum) error {
	keys, err := listKeys(ctx, t.api, t.store.ID, nil)
	if err != nil {
		return fmt.Errorf("reading back store %q: %w", t.store.ID, err)
	}
	got := dump.NewStoreHash(dump.Store{ID: t.store.ID})
	for _, key := range keys {
		resp, err := t.api.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: t.store.ID, Key: key})
		if err != nil {
			return fmt.Errorf("reading back key %q of store %q: %w", key, t.store.ID, err)
		}
		got.Add(dump.Entry{Key: key, Value: resp.GetValue().GetValue()})
	}
	now, err := globalVersion(ctx, t.api, t.store.ID)
	if err != nil {
		return fmt.Errorf("reading back the global version of store %q: %w", t.store.ID, err)
	}
	if g, w := got.Sum(), want; g != w || now != global {
		return exitError{exitVerification, fmt.Errorf("store %q on the target does not match the dump: it holds %d keys (SHA-256 of keys, values and order %s) and global version %d, the dump %d keys (%s) and global version %d; another client may have written to it",
			t.store.ID, g.Entries, sha(g.SHA256), now, w.Entries, sha(w.SHA256), global)}
	}
	return nil
}

// undo deletes the keys this run created, for a dump found bad after they were
// written: each at version 1, the version a new key takes, so that a key another
// client has written since stays. Global versions cannot go back and stay as they are.
func (t *kvTarget) undo(ctx context.Context) error {
	for store, keys := range t.wrote {
		for len(keys) > 0 {
			batch := make([]*vssv1.KeyValue, 0, min(len(keys), kvBatchItems))
			for _, key := range keys[:cap(batch)] {
				batch = append(batch, &vssv1.KeyValue{Key: key, Version: 1})
			}
			if _, err := t.api.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: store, DeleteItems: batch}); err != nil {
				return fmt.Errorf("removing the %d keys this import created in store %q: %w", len(keys), store, err)
			}
			keys = keys[len(batch):]
		}
		delete(t.wrote, store)
	}
	return nil
}
