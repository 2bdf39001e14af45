package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/dump"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// fillWallet writes the data the transfer tests move, through cl: store "wallet" with
// keys created in the order a, c, b (b deleted and created again, so it moved to the
// front of the listing), versions 3, 1 and 1, an empty value and a binary one, and the
// global version 2; store "" with one key and no global version; store "notes" with
// more keys than one listing page holds.
func fillWallet(t *testing.T, cl *vssclient.Client) {
	t.Helper()
	ctx := context.Background()
	put := func(store string, global *int64, items ...*vssv1.KeyValue) {
		t.Helper()
		if _, err := cl.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: store, TransactionItems: items, GlobalVersion: global}); err != nil {
			t.Fatal(err)
		}
	}
	kv := func(key string, version int64, value string) *vssv1.KeyValue {
		return &vssv1.KeyValue{Key: key, Version: version, Value: []byte(value)}
	}
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	put("wallet", nil, kv("a", 0, "first"), kv("b", 0, "to be deleted"))
	put("wallet", nil, kv("c", 0, ""))
	put("wallet", nil, kv("a", 1, "second"))
	put("wallet", nil, &vssv1.KeyValue{Key: "a", Version: 2, Value: binary})
	if _, err := cl.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "wallet", DeleteItems: []*vssv1.KeyValue{kv("b", 1, "")}}); err != nil {
		t.Fatal(err)
	}
	put("wallet", nil, kv("b", 0, "created again"))
	for v := range int64(2) {
		put("wallet", &v)
	}
	put("", nil, kv("x", 0, "in the empty store id"))
	var notes []*vssv1.KeyValue
	for i := range 110 {
		notes = append(notes, kv(fmt.Sprintf("note-%03d", i), 0, fmt.Sprintf("note %d", i)))
	}
	put("notes", nil, notes...)
}

// walletStores are the stores fillWallet writes, in dump order.
var walletStores = []string{"", "notes", "wallet"}

// storeState is what a store holds, read through the API: its keys oldest first with
// their versions and values, and its global version.
type storeState struct {
	keys     []string
	versions []int64
	values   [][]byte
	global   int64
}

// readStore reads store id through api.
func readStore(t *testing.T, api kvAPI, id string) storeState {
	t.Helper()
	ctx := context.Background()
	keys, err := listKeys(ctx, api, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := storeState{keys: keys}
	for _, key := range keys {
		resp, err := api.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: id, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		s.versions = append(s.versions, resp.GetValue().GetVersion())
		s.values = append(s.values, resp.GetValue().GetValue())
	}
	if s.global, err = globalVersion(ctx, api, id); err != nil {
		t.Fatal(err)
	}
	return s
}

// sameContent reports whether two stores hold the same keys in the same order with
// the same values; with versions, also the same versions and global version.
func sameContent(a, b storeState, versions bool) bool {
	if !slices.Equal(a.keys, b.keys) || len(a.values) != len(b.values) {
		return false
	}
	for i := range a.values {
		if !bytes.Equal(a.values[i], b.values[i]) {
			return false
		}
	}
	return !versions || (slices.Equal(a.versions, b.versions) && a.global == b.global)
}

// dumpStore is one store of a dump file and its entries.
type dumpStore struct {
	store   dump.Store
	entries []dump.Entry
}

// readDumpFile reads and checks the dump at path.
func readDumpFile(t *testing.T, path string) (dump.Header, []dumpStore, dump.Sum) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readDumpBytes(t, f)
}

// readDumpBytes reads and checks the dump r.
func readDumpBytes(t *testing.T, r io.Reader) (dump.Header, []dumpStore, dump.Sum) {
	t.Helper()
	dr, err := dump.NewReader(r, dump.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var stores []dumpStore
	for {
		k, err := dr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch k {
		case dump.KindStore:
			stores = append(stores, dumpStore{store: dr.Store()})
		case dump.KindEntry:
			stores[len(stores)-1].entries = append(stores[len(stores)-1].entries, dr.Entry())
		case dump.KindEnd:
			return dr.Header(), stores, dr.Sum()
		}
	}
	t.Fatal("the dump has no trailer")
	return dump.Header{}, nil, dump.Sum{}
}

// stateOf is what a store of a dump holds, as storeState.
func stateOf(s dumpStore) storeState {
	st := storeState{global: s.store.GlobalVersion}
	for _, e := range s.entries {
		st.keys = append(st.keys, e.Key)
		st.versions = append(st.versions, e.Version)
		st.values = append(st.values, e.Value)
	}
	return st
}
