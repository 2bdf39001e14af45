package encrypted_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/encrypted"
	"github.com/govss/vss/client/vsstest"
)

// exampleServer starts a real VSS server on loopback for an example.
func exampleServer() (url string, stop func()) {
	srv, err := vsstest.New(vsstest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	return srv.URL, srv.Close
}

// A wallet's data, encrypted: names obfuscated, values sealed and verified on reading.
// The keys come from the wallet seed as LDK Node derives them, and LDK Node's signing
// key of the seed makes the client the wallet's user.
func ExampleStore() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	seed := make([]byte, encrypted.WalletSeedSize) // LDK Node's keys_seed file; never log it
	keys, _ := encrypted.KeysFromWalletSeed(seed)
	signing, _ := encrypted.SigningKeyFromWalletSeed(seed)
	c := vssclient.New(url, vssclient.WithHeaders(vssclient.Signature(signing)))

	s := encrypted.NewStore(c, keys)
	if err := s.Put(ctx, "wallet", encrypted.Item{Key: "channel-manager", Value: []byte("state 1"), Version: 0}); err != nil {
		log.Fatal(err)
	}
	value, version, err := s.Get(ctx, "wallet", "channel-manager")
	var verr *encrypted.VerificationError
	if errors.As(err, &verr) { // the server altered, moved or rolled back the value
		log.Fatalf("%v under %s: %s", verr.Kind, verr.Key, verr.Reason)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s at version %d\n", value, version)
	list, _ := s.List(ctx, "wallet")
	fmt.Println(list)
	fmt.Println(s.StorageKey("channel-manager") != "channel-manager") // what the server sees
	// Output:
	// state 1 at version 1
	// [{channel-manager 1}]
	// true
}

// Open what an LDK Node wallet stores, with its seed: list namespaces and keys in clear
// and read a value.
func ExampleOpenLDK() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	seed := make([]byte, encrypted.WalletSeedSize) // the node's keys_seed file (os.ReadFile)
	keys, _ := encrypted.KeysFromWalletSeed(seed)
	signing, _ := encrypted.SigningKeyFromWalletSeed(seed)
	c := vssclient.New(url, vssclient.WithHeaders(vssclient.Signature(signing)))

	l, err := encrypted.OpenLDK(ctx, c, keys, "node") // finds the schema as LDK Node does
	if err != nil {
		log.Fatal(err)
	}
	_ = l.Write(ctx, "monitors", "", "abc_1", []byte("a channel monitor"))
	_ = l.Write(ctx, "", "", "manager", []byte("the channel manager"))

	namespaces, _ := l.ListNamespaces(ctx)
	for _, n := range namespaces {
		fmt.Printf("%q/%q: %v\n", n.Primary, n.Secondary, n.Keys)
	}
	value, _ := l.Read(ctx, "monitors", "", "abc_1")
	fmt.Printf("schema %v, %s\n", l.Schema(), value)
	// Output:
	// ""/"": [manager]
	// "monitors"/"": [abc_1]
	// schema V1, a channel monitor
}
