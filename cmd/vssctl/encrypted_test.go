package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/encrypted"
	"github.com/govss/vss/client/vsstest"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// testSeed writes a random wallet seed to a file of mode 0600, as LDK Node's keys_seed,
// and returns its path, its keys and a plain client signed with LDK Node's signing key
// of the seed (the wallet's user).
func testSeed(t *testing.T, srv *vsstest.Server) (path string, keys encrypted.Keys, raw *vssclient.Client, signingHex string) {
	t.Helper()
	seed := make([]byte, encrypted.WalletSeedSize)
	rand.Read(seed)
	path = filepath.Join(t.TempDir(), "keys_seed")
	if err := os.WriteFile(path, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := encrypted.KeysFromWalletSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := encrypted.SigningKeyFromWalletSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return path, keys, vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(sk))), hex.EncodeToString(sk.Serialize())
}

// TestSeedFile runs get, put, delete and list through the encryption layer.
func TestSeedFile(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	seedPath, keys, raw, signingHex := testSeed(t, srv)
	ctx := context.Background()
	c := newCLI(t, srv.URL, "VSSCTL_STORE_ID", "wallet", "VSSCTL_SEED_FILE", seedPath)

	c.ok("put", "greeting", "hello")
	c.ok("put", "--version", "1", "greeting", "hello, world")
	c.ok("put", "--version=-1", "other", "x")
	if out := c.ok("get", "greeting"); out != "hello, world" {
		t.Fatalf("get = %q", out)
	}
	if out := c.ok("get", "--json", "greeting"); out != `{"value":{"key":"greeting","version":"2","value":"aGVsbG8sIHdvcmxk"}}`+"\n" {
		t.Fatalf("get --json = %q", out)
	}
	if out := c.ok("list"); out != "other\t1\ngreeting\t2\n" {
		t.Fatalf("list = %q", out)
	}
	if out := c.ok("list", "--prefix", "gr", "--json"); out != `{"keyVersions":[{"key":"greeting","version":"2"}]}`+"\n" {
		t.Fatalf("list --prefix --json = %q", out)
	}
	if r := c.run("list", "--page-size", "1"); r.code != 0 || r.out != "other\t1\n" || !strings.Contains(r.err, "next page token: ") {
		t.Fatalf("list --page-size 1: %v", r)
	}
	c.fails(exitConflict, "aborted", "put", "greeting", "again")

	// The server holds only obfuscated names and sealed values, readable by the library.
	s := encrypted.NewStore(raw, keys)
	if v, version, err := s.Get(ctx, "wallet", "greeting"); err != nil || string(v) != "hello, world" || version != 2 {
		t.Fatalf("the library reads %q, %d, %v", v, version, err)
	}
	plain := newCLI(t, srv.URL, "VSSCTL_STORE_ID", "wallet", "VSSCTL_PRIVATE_KEY", signingHex)
	if out := plain.ok("list"); strings.Contains(out, "greeting") || strings.Count(out, "\n") != 2 {
		t.Fatalf("without the seed, list = %q", out)
	}
	if out := plain.ok("get", s.StorageKey("greeting")); strings.Contains(out, "hello") {
		t.Fatalf("the stored value shows the plaintext: %q", out)
	}
	// --seed-file signs as the wallet: whoami names LDK Node's signing key.
	pub := newCLI(t, srv.URL, "VSSCTL_PRIVATE_KEY", signingHex).ok("whoami")
	if out := c.ok("whoami"); out != pub {
		t.Fatalf("whoami with the seed = %q, want %q", out, pub)
	}

	// A VSS seed gives the same keys; it signs nothing, so a key is given.
	vs, _ := encrypted.VSSSeed(mustRead(t, seedPath))
	vssSeedPath := filepath.Join(t.TempDir(), "vss_seed")
	if err := os.WriteFile(vssSeedPath, []byte(hex.EncodeToString(vs[:])+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	if out := plain.ok("--vss-seed-file", vssSeedPath, "get", "greeting"); out != "hello, world" {
		t.Fatalf("get with --vss-seed-file = %q", out)
	}

	// A value the server moved to another key: exit 9, nothing printed.
	kv, err := raw.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "wallet", Key: s.StorageKey("other")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "wallet", TransactionItems: []*vssv1.KeyValue{
		{Key: s.StorageKey("greeting"), Version: 2, Value: kv.GetValue().GetValue()}}}); err != nil {
		t.Fatal(err)
	}
	c.fails(exitVerification, "AUTHENTICATION", "get", "greeting")

	c.ok("delete", "--prefix", "gr")
	c.ok("delete", "other")
	if out := c.ok("list"); out != "" {
		t.Fatalf("after the deletes, list = %q", out)
	}
	// A name that is not obfuscated with the seed's keys makes list fail.
	plain.ok("put", "plain-name", "v")
	c.fails(exitVerification, "FORMAT", "list")

	// The seed file is the wallet's secret.
	open := filepath.Join(t.TempDir(), "open_seed")
	if err := os.WriteFile(open, mustRead(t, seedPath), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad_seed")
	if err := os.WriteFile(bad, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fails(exitUsage, "chmod 600", "--seed-file", open, "get", "greeting")
	c.fails(exitUsage, "want a wallet seed", "--seed-file", bad, "get", "greeting")
	c.fails(exitUsage, "not both", "--seed-file", seedPath, "--vss-seed-file", vssSeedPath, "get", "greeting")
	c.fails(exitUsage, "watch does not take --seed-file", "--seed-file", seedPath, "watch")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLDKView lists and reads what LDK Node's layout holds, in both schema generations.
func TestLDKView(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	seedPath, keys, raw, _ := testSeed(t, srv)
	ctx := context.Background()
	c := newCLI(t, srv.URL, "VSSCTL_SEED_FILE", seedPath)

	// An empty store: V1, and nothing written.
	r := c.run("--store-id", "node", "ldk", "ls")
	if r.code != 0 || r.out != "" || !strings.Contains(r.err, "schema V1 (not recorded") {
		t.Fatalf("ldk ls of an empty store: %v", r)
	}
	if resp, err := raw.ListKeyVersions(ctx, &vssv1.ListKeyVersionsRequest{StoreId: "node"}); err != nil || len(resp.GetKeyVersions()) != 0 {
		t.Fatalf("ldk ls wrote %v, %v", resp.GetKeyVersions(), err)
	}

	// What LDK Node writes (as client/encrypted writes it).
	v1, err := encrypted.OpenLDK(ctx, raw, keys, "node")
	if err != nil {
		t.Fatal(err)
	}
	v0 := encrypted.NewLDKStore(raw, keys, "old", encrypted.LDKSchemaV0)
	for _, l := range []*encrypted.LDKStore{v1, v0} {
		for _, e := range [][4]string{
			{"", "", "manager", "channel manager"},
			{"bdk_wallet", "", "descriptor", "wpkh(...)"},
			{"monitors", "", "abc_1", "monitor"},
			{"ns", "sub", "k", "nested"},
		} {
			if err := l.Write(ctx, e[0], e[1], e[2], []byte(e[3])); err != nil {
				t.Fatal(err)
			}
		}
	}
	for store, schema := range map[string]string{"node": "schema V1 (recorded in the store)", "old": "schema V0 (not recorded; LDK Node's V0"} {
		c := newCLI(t, srv.URL, "VSSCTL_SEED_FILE", seedPath, "VSSCTL_STORE_ID", store)
		r := c.run("ldk", "ls")
		if want := "\t\tmanager\nbdk_wallet\t\tdescriptor\nmonitors\t\tabc_1\nns\tsub\tk\n"; r.code != 0 || r.out != want || !strings.Contains(r.err, schema) {
			t.Errorf("%s: ldk ls: %v; want %q and %q", store, r, want, schema)
		}
		if out := c.ok("ldk", "ls", "monitors"); out != "abc_1\n" {
			t.Errorf("%s: ldk ls monitors = %q", store, out)
		}
		if out := c.ok("ldk", "ls", "ns", "sub", "--json"); out != `{"primary":"ns","secondary":"sub","keys":["k"]}`+"\n" {
			t.Errorf("%s: ldk ls ns sub --json = %q", store, out)
		}
		if out := c.ok("ldk", "ls", "--json"); !strings.HasPrefix(out, `[{"primary":"","secondary":"","keys":["manager"]},`) {
			t.Errorf("%s: ldk ls --json = %q", store, out)
		}
		if out := c.ok("ldk", "get", "", "", "manager"); out != "channel manager" {
			t.Errorf("%s: ldk get manager = %q", store, out)
		}
		if out := c.ok("ldk", "get", "monitors", "", "abc_1", "--json"); out != `{"key":"abc_1","primary":"monitors","secondary":"","value":"bW9uaXRvcg=="}`+"\n" {
			t.Errorf("%s: ldk get --json = %q", store, out)
		}
		c.fails(exitNotFound, "no such key", "ldk", "get", "monitors", "", "missing")
		c.fails(exitUsage, "invalid LDK namespace or key", "ldk", "get", "a/b", "", "k")
		c.fails(exitUsage, "ldk: want ls", "ldk", "get", "monitors")
		c.fails(exitUsage, "ldk: want ls", "ldk", "rm", "a")
	}

	// A value moved between namespaces: V1 detects it.
	from, _ := v1.StorageKey("monitors", "", "abc_1")
	to, _ := v1.StorageKey("ns", "sub", "k")
	kv, err := raw.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "node", Key: from})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "node", TransactionItems: []*vssv1.KeyValue{{Key: to, Version: -1, Value: kv.GetValue().GetValue()}}}); err != nil {
		t.Fatal(err)
	}
	c.fails(exitVerification, "AUTHENTICATION", "--store-id", "node", "ldk", "get", "ns", "sub", "k")
	newCLI(t, srv.URL).fails(exitUsage, "ldk needs the wallet's seed", "ldk", "ls")
}
