package faulttest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/pgtest"
)

// TestInstancesRace runs three servers on one PostgreSQL database and has many clients,
// spread over the servers and both bindings, do read-modify-write cycles on the same few
// keys of one store: each version has exactly one winner, a key's final version is the
// number of writes that succeeded on it, and its value holds every winner's token in
// version order (no lost update).
func TestInstancesRace(t *testing.T) {
	db := pgtest.NewDatabase(t)
	var servers []*serverProc
	for range 3 {
		servers = append(servers, startServer(t, "--database-url", db, "--auth", "signature"))
	}
	key, err := secp256k1.GeneratePrivateKey() // one user: the clients share its store
	if err != nil {
		t.Fatal(err)
	}
	const (
		store   = "shared"
		clients = 12
		rounds  = 25 // read-modify-write cycles per client
	)
	keys := []string{"a", "b", "c"}
	ctx := testContext(t, 2*time.Minute)
	creator := newAPI(0, servers[0].url(), key)
	for _, k := range keys {
		if err := creator.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: store,
			TransactionItems: []*vssv1.KeyValue{{Key: k, Version: 0, Value: []byte("init;")}}}); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	winners := map[string]map[int64]string{} // key -> version read -> token of the write that won it
	for _, k := range keys {
		winners[k] = map[int64]string{0: "init;"}
	}
	var conflicts int
	var wg sync.WaitGroup
	for c := range clients {
		// Each client has one connection per server, and binding c%2.
		apis := make([]api, len(servers))
		for i, s := range servers {
			apis[i] = newAPI(c, s.url(), key)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				k := keys[(c+r)%len(keys)]
				// Read through one server, write through another.
				res, err := apis[(c+r)%len(apis)].GetObject(ctx, &vssv1.GetObjectRequest{StoreId: store, Key: k})
				if err != nil {
					t.Errorf("client %d: get %s: %v", c, k, err)
					return
				}
				v := res.GetValue()
				token := fmt.Sprintf("c%d.r%d;", c, r)
				err = apis[(c+r+1)%len(apis)].PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: store,
					TransactionItems: []*vssv1.KeyValue{{Key: k, Version: v.GetVersion(), Value: append(bytes.Clone(v.GetValue()), token...)}}})
				mu.Lock()
				switch {
				case err == nil:
					if w, dup := winners[k][v.GetVersion()]; dup {
						t.Errorf("key %s version %d: both %s and %s won", k, v.GetVersion(), w, token)
					}
					winners[k][v.GetVersion()] = token
				case isCode(err, vssv1.ErrorCode_CONFLICT_EXCEPTION):
					conflicts++
				default:
					t.Errorf("client %d: put %s: %v", c, k, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	total := 0
	for _, k := range keys {
		got, err := readKey(ctx, creator, store, k)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(len(winners[k])) // the creation included
		var want []byte
		for v := range n {
			token, ok := winners[k][v]
			if !ok {
				t.Errorf("key %s: no winner for version %d although %d writes succeeded", k, v, n)
			}
			want = append(want, token...)
		}
		if got.version != n {
			t.Errorf("key %s: version %d after %d successful writes", k, got.version, n)
		}
		if !bytes.Equal(got.value, want) {
			t.Errorf("key %s: lost update: value %q, want %q", k, got.value, want)
		}
		total += int(n) - 1
	}
	t.Logf("%d clients over %d servers: %d read-modify-writes succeeded, %d conflicted", clients, len(servers), total, conflicts)
	if conflicts == 0 {
		t.Error("no conflict: the clients did not race")
	}
}
