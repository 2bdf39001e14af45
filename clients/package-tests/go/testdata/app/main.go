// Command app is the program a new user writes against the Go client: run.sh copies it
// into a fresh module built the way client/README.md says, and runs it against the
// vss-server at $VSS_URL (signature authentication). It exits non-zero on any mismatch.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/encrypted"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

func main() {
	if err := run(os.Getenv("VSS_URL")); err != nil {
		log.Fatal(err)
	}
	fmt.Println("ok github.com/govss/vss/client")
}

// encryptedRoundTrip writes and reads a key through client/encrypted, with keys from a
// wallet seed as LDK Node derives them.
func encryptedRoundTrip(ctx context.Context, url string) error {
	seed := make([]byte, encrypted.WalletSeedSize)
	keys, err := encrypted.KeysFromWalletSeed(seed)
	if err != nil {
		return err
	}
	signing, err := encrypted.SigningKeyFromWalletSeed(seed)
	if err != nil {
		return err
	}
	s := encrypted.NewStore(vssclient.New(url, vssclient.WithHeaders(vssclient.Signature(signing))), keys)
	if err := s.Put(ctx, "private", encrypted.Item{Key: "secret", Value: []byte("hidden"), Version: 0}); err != nil {
		return fmt.Errorf("encrypted put: %w", err)
	}
	v, version, err := s.Get(ctx, "private", "secret")
	if err != nil || string(v) != "hidden" || version != 1 {
		return fmt.Errorf("encrypted get: %q, %d, %v", v, version, err)
	}
	return nil
}

func run(url string) error {
	if url == "" {
		return fmt.Errorf("VSS_URL is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		return err
	}
	c := vssclient.New(url, vssclient.WithHeaders(vssclient.Signature(key)))

	put := &vssv1.PutObjectRequest{StoreId: "wallet", TransactionItems: []*vssv1.KeyValue{
		{Key: "greeting", Version: 0, Value: []byte("hello")},
	}}
	if _, err := c.PutObjects(ctx, put); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if _, err := c.PutObjects(ctx, put); !vssclient.IsConflict(err) {
		return fmt.Errorf("the same create again: got %v, want a conflict", err)
	}
	got, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "wallet", Key: "greeting"})
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	if v := got.GetValue(); v.GetVersion() != 1 || string(v.GetValue()) != "hello" {
		return fmt.Errorf("get: version %d, value %q; want 1, %q", v.GetVersion(), v.GetValue(), "hello")
	}
	all, err := c.ListAll(ctx, &vssv1.ListKeyVersionsRequest{StoreId: "wallet"})
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	if n := len(all.GetKeyVersions()); n != 1 {
		return fmt.Errorf("list: %d keys, want 1", n)
	}
	if _, err := c.DeleteObject(ctx, &vssv1.DeleteObjectRequest{StoreId: "wallet",
		KeyValue: &vssv1.KeyValue{Key: "greeting", Version: -1}}); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if _, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "wallet", Key: "greeting"}); !vssclient.IsNotFound(err) {
		return fmt.Errorf("get after delete: got %v, want not found", err)
	}
	return encryptedRoundTrip(ctx, url)
}
