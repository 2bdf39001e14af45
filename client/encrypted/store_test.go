package encrypted_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/encrypted"
	"github.com/govss/vss/client/vsstest"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// The live tests play the server's operator with a plain client of the same user: it
// reads, copies and rewrites the stored bytes as a lying server could, and the encrypted
// store must notice.

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wallet is a user of the test server: a random wallet seed, the keys LDK Node derives
// from it, and a plain client signed with LDK Node's signing key of that seed.
type wallet struct {
	seed []byte
	keys encrypted.Keys
	raw  *vssclient.Client
}

func newWallet(t *testing.T, srv *vsstest.Server) wallet {
	t.Helper()
	seed := make([]byte, encrypted.WalletSeedSize)
	rand.Read(seed)
	keys, err := encrypted.KeysFromWalletSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := encrypted.SigningKeyFromWalletSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return wallet{seed: seed, keys: keys, raw: vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(sk)))}
}

func (w wallet) store() *encrypted.Store { return encrypted.NewStore(w.raw, w.keys) }

// rawGet returns what the server stores under storageKey.
func rawGet(t *testing.T, c *vssclient.Client, storeID, storageKey string) *vssv1.KeyValue {
	t.Helper()
	resp, err := c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: storeID, Key: storageKey})
	if err != nil {
		t.Fatalf("raw get %s: %v", storageKey, err)
	}
	return resp.GetValue()
}

// rawPut stores value under storageKey as the server's operator would.
func rawPut(t *testing.T, c *vssclient.Client, storeID, storageKey string, version int64, value []byte) {
	t.Helper()
	if _, err := c.PutObjects(testCtx(t), &vssv1.PutObjectRequest{StoreId: storeID,
		TransactionItems: []*vssv1.KeyValue{{Key: storageKey, Version: version, Value: value}}}); err != nil {
		t.Fatalf("raw put %s: %v", storageKey, err)
	}
}

func rawKeys(t *testing.T, c *vssclient.Client, storeID string) []string {
	t.Helper()
	resp, err := c.ListAll(testCtx(t), &vssv1.ListKeyVersionsRequest{StoreId: storeID})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.GetKeyVersions() {
		keys = append(keys, kv.GetKey())
	}
	return keys
}

// wantVerification fails the test unless err is a VerificationError of kind about key.
func wantVerification(t *testing.T, err error, kind encrypted.Kind, storageKey string) *encrypted.VerificationError {
	t.Helper()
	var v *encrypted.VerificationError
	if !errors.As(err, &v) {
		t.Fatalf("got %v, want a %v VerificationError", err, kind)
	}
	if v.Kind != kind || v.Key != storageKey {
		t.Fatalf("got %v (kind %v, key %q), want kind %v for %q", err, v.Kind, v.Key, kind, storageKey)
	}
	return v
}

func TestStoreRoundTrip(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	w := newWallet(t, srv)
	s, ctx := w.store(), testCtx(t)

	if err := s.Put(ctx, "app", encrypted.Item{Key: "greeting", Value: []byte("hello"), Version: 0},
		encrypted.Item{Key: "big", Value: bytes.Repeat([]byte("b"), 3<<20), Version: -1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "app", encrypted.Item{Key: "greeting", Value: []byte("again"), Version: 0}); !vssclient.IsConflict(err) {
		t.Fatalf("re-create: %v, want a conflict", err)
	}
	if err := s.Put(ctx, "app", encrypted.Item{Key: "greeting", Value: []byte("hello, world"), Version: 1}); err != nil {
		t.Fatal(err)
	}
	value, version, err := s.Get(ctx, "app", "greeting")
	if err != nil || string(value) != "hello, world" || version != 2 {
		t.Fatalf("Get = %q, %d, %v", value, version, err)
	}
	if value, version, err := s.Get(ctx, "app", "big"); err != nil || len(value) != 3<<20 || version != 1 {
		t.Fatalf("Get big = %d bytes, %d, %v", len(value), version, err)
	}
	if _, _, err := s.Get(ctx, "app", "missing"); !vssclient.IsNotFound(err) {
		t.Fatalf("Get missing: %v", err)
	}

	// The server sees neither names nor values.
	for _, sk := range rawKeys(t, w.raw, "app") {
		if strings.Contains(sk, "greeting") || strings.Contains(sk, "big") {
			t.Errorf("stored key %q shows its name", sk)
		}
		if v := rawGet(t, w.raw, "app", sk).GetValue(); bytes.Contains(v, []byte("hello")) || bytes.Contains(v, []byte("bbbb")) {
			t.Errorf("stored value of %q shows its content", sk)
		}
	}
	if sk := s.StorageKey("greeting"); rawGet(t, w.raw, "app", sk).GetVersion() != 2 {
		t.Errorf("greeting is not stored under %s", sk)
	}

	// A batch: create, delete, global version, all or nothing.
	gv := int64(0)
	if err := s.PutBatch(ctx, "app", encrypted.Batch{Items: []encrypted.Item{{Key: "c", Value: []byte("3"), Version: 0}},
		Deletes: []encrypted.Item{{Key: "big", Version: 1}}, GlobalVersion: &gv}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBatch(ctx, "app", encrypted.Batch{Items: []encrypted.Item{{Key: "d", Version: 0}}, GlobalVersion: &gv}); !vssclient.IsConflict(err) {
		t.Fatalf("stale global version: %v", err)
	}
	list, err := s.List(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if want := []encrypted.KeyVersion{{Key: "c", Version: 1}, {Key: "greeting", Version: 2}}; !slices.Equal(list, want) {
		t.Fatalf("List = %v, want %v", list, want)
	}
	if err := s.Delete(ctx, "app", "greeting", 2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "app", "greeting"); !vssclient.IsNotFound(err) {
		t.Fatalf("Get deleted: %v", err)
	}

	// A name that is not one of ours makes the listing fail, naming it.
	rawPut(t, w.raw, "app", "plain-name", 0, []byte("x"))
	_, err = s.List(ctx, "app")
	wantVerification(t, err, encrypted.KindFormat, "plain-name")
}

// TestStoreDetectsLyingServer covers what a reader must detect: a tampered tag, a value
// swapped between keys, a value moved from another user, a rolled-back conditional
// write, and bytes that are no sealed value.
func TestStoreDetectsLyingServer(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	alice, bob := newWallet(t, srv), newWallet(t, srv)
	s := alice.store()
	put := func(key, value string, version int64) {
		t.Helper()
		if err := s.Put(testCtx(t), "w", encrypted.Item{Key: key, Value: []byte(value), Version: version}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "value of a", 0)
	put("b", "value of b", 0)
	ska, skb := s.StorageKey("a"), s.StorageKey("b")

	t.Run("tampered tag", func(t *testing.T) {
		put("t", "tampered", 0)
		sk := s.StorageKey("t")
		var st vssv1.Storable
		if err := proto.Unmarshal(rawGet(t, alice.raw, "w", sk).GetValue(), &st); err != nil {
			t.Fatal(err)
		}
		st.EncryptionMetadata.Tag[0] ^= 0x80
		b, _ := proto.Marshal(&st)
		rawPut(t, alice.raw, "w", sk, 1, b)
		_, _, err := s.Get(testCtx(t), "w", "t")
		wantVerification(t, err, encrypted.KindAuthentication, sk)
	})

	t.Run("value swapped between keys", func(t *testing.T) {
		rawPut(t, alice.raw, "w", ska, 1, rawGet(t, alice.raw, "w", skb).GetValue())
		value, _, err := s.Get(testCtx(t), "w", "a")
		wantVerification(t, err, encrypted.KindAuthentication, ska)
		if value != nil {
			t.Errorf("Get returned data with the error: %q", value)
		}
		if v, _, err := s.Get(testCtx(t), "w", "b"); err != nil || string(v) != "value of b" {
			t.Errorf("b: %q, %v", v, err)
		}
	})

	t.Run("value moved to another user", func(t *testing.T) {
		bs := bob.store()
		if err := bs.Put(testCtx(t), "w", encrypted.Item{Key: "b", Value: []byte("bob's"), Version: 0}); err != nil {
			t.Fatal(err)
		}
		// The operator puts Alice's b where Bob's b is stored.
		sk := bs.StorageKey("b")
		rawPut(t, bob.raw, "w", sk, 1, rawGet(t, alice.raw, "w", skb).GetValue())
		_, _, err := bs.Get(testCtx(t), "w", "b")
		wantVerification(t, err, encrypted.KindAuthentication, sk)
	})

	t.Run("rolled-back conditional write", func(t *testing.T) {
		put("r", "first", 0) // sealed 0, stored 1
		sk := s.StorageKey("r")
		old := rawGet(t, alice.raw, "w", sk).GetValue()
		put("r", "second", 1) // sealed 1, stored 2
		if v, version, err := s.Get(testCtx(t), "w", "r"); err != nil || string(v) != "second" || version != 2 {
			t.Fatalf("before the rollback: %q, %d, %v", v, version, err)
		}
		rawPut(t, alice.raw, "w", sk, 2, old) // the first value, now served as version 3
		_, _, err := s.Get(testCtx(t), "w", "r")
		v := wantVerification(t, err, encrypted.KindVersion, sk)
		if v.Sealed != 0 || v.Served != 3 {
			t.Errorf("sealed %d, served %d; want 0 and 3", v.Sealed, v.Served)
		}
	})

	t.Run("not a sealed value", func(t *testing.T) {
		put("p", "p", 0)
		sk := s.StorageKey("p")
		rawPut(t, alice.raw, "w", sk, 1, []byte("plain text"))
		_, _, err := s.Get(testCtx(t), "w", "p")
		wantVerification(t, err, encrypted.KindFormat, sk)
	})
}

func TestStoreListPages(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	w := newWallet(t, srv)
	s, ctx := w.store(), testCtx(t)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if err := s.Put(ctx, "paged", encrypted.Item{Key: k, Version: 0}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	token, pages := "", 0
	for {
		page, next, err := s.ListPage(ctx, "paged", token, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, kv := range page {
			keys = append(keys, kv.Key)
		}
		if token = next; token == "" {
			break
		}
	}
	if want := []string{"e", "d", "c", "b", "a"}; !slices.Equal(keys, want) || pages != 3 {
		t.Fatalf("ListPage gave %v in %d pages, want %v in 3", keys, pages, want)
	}
}

func TestStoreWithLease(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	w := newWallet(t, srv)
	ctx := testCtx(t)
	lease, err := w.raw.AcquireLease(ctx, "leased", "writer", "laptop", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := w.store().WithWriter(lease)
	if err := s.Put(ctx, "leased", encrypted.Item{Key: "k", Value: []byte("v"), Version: 0}); err != nil {
		t.Fatal(err)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "leased", encrypted.Item{Key: "k", Value: []byte("w"), Version: 1}); !errors.Is(err, vssclient.ErrLeaseLost) {
		t.Fatalf("write after release: %v, want ErrLeaseLost", err)
	}
	if v, _, err := w.store().Get(ctx, "leased", "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
}
