// Package dumptest checks a store's export (storage.Exporter), written once and run
// against every store: the store's test opens a fresh store whose export pages end at a
// small byte budget, and calls the checks with it.
package dumptest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/govss/vss/storage"
)

// PageBytes is the export byte budget a store under test must use, small enough that
// the checks' data spans many pages and holds values larger than a page.
const PageBytes = 64

// Exporter is a store under test.
type Exporter interface {
	storage.Store
	storage.Exporter
}

// Recorder is an ExportVisitor that keeps what it is given and checks the calls' order.
type Recorder struct {
	Stores  []storage.ExportStore
	Entries [][]storage.KeyValue
	open    bool
}

// BeginStore implements storage.ExportVisitor.
func (r *Recorder) BeginStore(s storage.ExportStore) error {
	if r.open {
		return fmt.Errorf("store %q begins inside another", s.ID)
	}
	r.Stores, r.Entries, r.open = append(r.Stores, s), append(r.Entries, nil), true
	return nil
}

// Entry implements storage.ExportVisitor.
func (r *Recorder) Entry(kv storage.KeyValue) error {
	if !r.open {
		return fmt.Errorf("entry %q outside a store", kv.Key)
	}
	r.Entries[len(r.Entries)-1] = append(r.Entries[len(r.Entries)-1], kv)
	return nil
}

// EndStore implements storage.ExportVisitor.
func (r *Recorder) EndStore() error {
	if !r.open {
		return fmt.Errorf("store end outside a store")
	}
	r.open = false
	return nil
}

// Export exports user's data from s and fails the test on error.
func Export(t *testing.T, s storage.Exporter, user string) *Recorder {
	t.Helper()
	var r Recorder
	if err := s.ExportUser(t.Context(), user, &r); err != nil {
		t.Fatalf("ExportUser(%q): %v", user, err)
	}
	if r.open {
		t.Fatalf("ExportUser(%q) left a store open", user)
	}
	return &r
}

func put(t *testing.T, s storage.Store, user string, req storage.PutRequest) {
	t.Helper()
	if err := s.Put(t.Context(), user, req); err != nil {
		t.Fatalf("Put(%q, %q): %v", user, req.StoreID, err)
	}
}

// value returns a value of n bytes that tells where it belongs.
func value(key string, n int) []byte {
	return bytes.Repeat([]byte(key+"."), n/(len(key)+1)+1)[:n]
}

// CheckExport writes a user's stores and exports them: in store id byte order, each with
// its global version (or none), the entries oldest first across many pages (values of
// every size, some larger than PageBytes and one empty), updates keeping their place,
// a key deleted and created again moving to the end, and nothing of other users.
func CheckExport(t *testing.T, s Exporter) {
	t.Helper()
	var (
		want  []storage.KeyValue
		batch []storage.KeyValue
	)
	for i := range 60 {
		key := fmt.Sprintf("k%03d", i)
		kv := storage.KeyValue{Key: key, Version: -1, Value: value(key, (i*37)%(3*PageBytes))}
		batch = append(batch, kv)
		kv.Version = 1
		want = append(want, kv)
	}
	put(t, s, "alice", storage.PutRequest{StoreID: "wallet", Puts: batch[:30]})
	put(t, s, "alice", storage.PutRequest{StoreID: "wallet", Puts: batch[30:]})
	put(t, s, "alice", storage.PutRequest{StoreID: "wallet", Puts: []storage.KeyValue{{Key: "k001", Version: 1, Value: []byte("updated")}}})
	want[1] = storage.KeyValue{Key: "k001", Version: 2, Value: []byte("updated")}
	put(t, s, "alice", storage.PutRequest{StoreID: "wallet", Deletes: []storage.KeyValue{{Key: "k000", Version: -1}}})
	put(t, s, "alice", storage.PutRequest{StoreID: "wallet", Puts: []storage.KeyValue{
		{Key: "k000", Value: []byte("again")}, {Key: storage.GlobalVersionKey, Version: 0}}})
	want = append(want[1:], storage.KeyValue{Key: "k000", Version: 1, Value: []byte("again")})
	put(t, s, "alice", storage.PutRequest{StoreID: "", Puts: []storage.KeyValue{{Key: "only", Value: []byte{0, 0xff}}}})
	put(t, s, "alice", storage.PutRequest{StoreID: "gv-only", Puts: []storage.KeyValue{{Key: storage.GlobalVersionKey, Version: 0}}})
	put(t, s, "alice", storage.PutRequest{StoreID: "Wallet", Puts: []storage.KeyValue{{Key: "big", Value: value("big", 10*PageBytes)}}})
	put(t, s, "bob", storage.PutRequest{StoreID: "wallet", Puts: []storage.KeyValue{{Key: "secret"}}})

	r := Export(t, s, "alice")
	wantStores := []storage.ExportStore{{ID: ""}, {ID: "Wallet"}, {ID: "gv-only", GlobalVersion: 1, HasGlobalVersion: true},
		{ID: "wallet", GlobalVersion: 1, HasGlobalVersion: true}}
	if fmt.Sprint(r.Stores) != fmt.Sprint(wantStores) {
		t.Fatalf("stores %+v, want %+v", r.Stores, wantStores)
	}
	CheckEntries(t, "''", r.Entries[0], []storage.KeyValue{{Key: "only", Version: 1, Value: []byte{0, 0xff}}})
	CheckEntries(t, "Wallet", r.Entries[1], []storage.KeyValue{{Key: "big", Version: 1, Value: value("big", 10*PageBytes)}})
	CheckEntries(t, "gv-only", r.Entries[2], nil)
	CheckEntries(t, "wallet", r.Entries[3], want)

	if none := Export(t, s, "carol"); len(none.Stores) != 0 {
		t.Errorf("a user without data exports %+v", none.Stores)
	}
}

// CheckEntries compares the entries of one store with want, in order.
func CheckEntries(t *testing.T, store string, got, want []storage.KeyValue) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("store %s: %d entries, want %d: %v", store, len(got), len(want), keys(got))
		return
	}
	for i := range got {
		if got[i].Key != want[i].Key || got[i].Version != want[i].Version || !bytes.Equal(got[i].Value, want[i].Value) {
			t.Errorf("store %s entry %d: %q v%d (%d bytes), want %q v%d (%d bytes)", store, i,
				got[i].Key, got[i].Version, len(got[i].Value), want[i].Key, want[i].Version, len(want[i].Value))
		}
	}
}

func keys(kvs []storage.KeyValue) string {
	var b strings.Builder
	for _, kv := range kvs {
		b.WriteString(kv.Key + " ")
	}
	return b.String()
}
