package vssclient_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/vsstest"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// serverURL is a real VSS server with signature authentication and the LNURL-auth
// issuer, started by TestMain for the examples.
var serverURL string

func TestMain(m *testing.M) {
	srv, err := vsstest.New(vsstest.Config{LNURLAuth: true})
	if err != nil {
		log.Fatal(err)
	}
	serverURL = srv.URL
	code := m.Run()
	srv.Close()
	os.Exit(code)
}

// A wallet's first steps: create a key, read it back, update it with its version, and
// see the conflict that an outdated version causes.
func Example() {
	ctx := context.Background()
	key, _ := secp256k1.GeneratePrivateKey() // a wallet derives its key from its seed
	c := vssclient.New(serverURL, vssclient.WithHeaders(vssclient.Signature(key)))

	// Version 0 creates the key.
	_, err := c.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "wallet",
		TransactionItems: []*vssv1.KeyValue{{Key: "channel-manager", Version: 0, Value: []byte("state 1")}}})
	if err != nil {
		log.Fatal(err)
	}
	got, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "wallet", Key: "channel-manager"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s at version %d\n", got.GetValue().GetValue(), got.GetValue().GetVersion())

	// Updating requires the stored version; an outdated one is a conflict.
	update := &vssv1.PutObjectRequest{StoreId: "wallet",
		TransactionItems: []*vssv1.KeyValue{{Key: "channel-manager", Version: 1, Value: []byte("state 2")}}}
	_, err = c.PutObjects(ctx, update)
	fmt.Println("first update:", err)
	_, err = c.PutObjects(ctx, update)
	fmt.Println("second update is a conflict:", vssclient.IsConflict(err))

	_, err = c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "wallet", Key: "no-such-key"})
	fmt.Println("missing key:", vssclient.IsNotFound(err))
	// Output:
	// state 1 at version 1
	// first update: <nil>
	// second update is a conflict: true
	// missing key: true
}

// ListAll follows the page tokens; the first page carries the store's global version.
func ExampleClient_ListAll() {
	ctx := context.Background()
	key, _ := secp256k1.GeneratePrivateKey()
	c := vssclient.New(serverURL, vssclient.WithHeaders(vssclient.Signature(key)))

	for _, k := range []string{"monitor-a", "monitor-b", "monitor-c", "payments"} {
		_, err := c.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "wallet",
			TransactionItems: []*vssv1.KeyValue{{Key: k, Version: 0, Value: []byte("…")}}})
		if err != nil {
			log.Fatal(err)
		}
	}
	prefix, pageSize := "monitor-", int32(2)
	all, err := c.ListAll(ctx, &vssv1.ListKeyVersionsRequest{StoreId: "wallet", KeyPrefix: &prefix, PageSize: &pageSize})
	if err != nil {
		log.Fatal(err)
	}
	for _, kv := range all.GetKeyVersions() {
		fmt.Println(kv.GetKey(), kv.GetVersion())
	}
	fmt.Println("global version:", all.GetGlobalVersion())
	// Output:
	// monitor-c 1
	// monitor-b 1
	// monitor-a 1
	// global version: 0
}

// Moving a wallet to another user (or server): export its stores as a dump, import the
// dump, compare the checksums, and delete the old copy.
func ExampleClient_ImportData() {
	ctx := context.Background()
	oldKey, _ := secp256k1.GeneratePrivateKey()
	newKey, _ := secp256k1.GeneratePrivateKey()
	from := vssclient.New(serverURL, vssclient.WithHeaders(vssclient.Signature(oldKey)))
	to := vssclient.New(serverURL, vssclient.WithHeaders(vssclient.Signature(newKey)))
	_, err := from.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "wallet",
		TransactionItems: []*vssv1.KeyValue{{Key: "channel-manager", Version: 0, Value: []byte("…")}}})
	if err != nil {
		log.Fatal(err)
	}

	var dumpFile bytes.Buffer // or an *os.File
	exported, err := from.ExportData(ctx, &dumpFile)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("exported %d stores, %d entries\n", exported.Sum.Stores, exported.Sum.Entries)

	// A file is read again at the offsets sent: pass io.NewSectionReader(f, 0, size).
	// Run again with the same id and Resume after an interruption: only the rest is sent.
	imported, err := to.ImportData(ctx, bytes.NewReader(dumpFile.Bytes()), "move-wallet", vssclient.ImportOptions{Resume: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same SHA-256:", imported.Sum.SHA256 == exported.Sum.SHA256)

	dry, err := from.DeleteStore(ctx, "wallet", true)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("would delete %d keys\n", dry.GetKeys())
	if _, err := from.DeleteStore(ctx, "wallet", false); err != nil {
		log.Fatal(err)
	}
	// Output:
	// exported 1 stores, 1 entries
	// same SHA-256: true
	// would delete 1 keys
}

// NewLNURLAuth logs in at the server's LNURL-auth issuer and sends the JWT it gets; the
// user is the linking key, the same user the signature scheme makes of that key.
func ExampleNewLNURLAuth() {
	ctx := context.Background()
	linkingKey, _ := secp256k1.GeneratePrivateKey()
	lnurl, err := vssclient.NewLNURLAuth(vssclient.LNURLAuthConfig{
		URL:        serverURL + "/auth/lnurl",
		LinkingKey: linkingKey,
	})
	if err != nil {
		log.Fatal(err)
	}
	c := vssclient.New(serverURL, vssclient.WithHeaders(lnurl))
	_, err = c.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "wallet",
		TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1, Value: []byte("written with a JWT")}}})
	if err != nil {
		log.Fatal(err)
	}

	signed := vssclient.New(serverURL, vssclient.WithHeaders(vssclient.Signature(linkingKey)))
	got, err := signed.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "wallet", Key: "k"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, read with a signature\n", got.GetValue().GetValue())
	// Output:
	// written with a JWT, read with a signature
}
