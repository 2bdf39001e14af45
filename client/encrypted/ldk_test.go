package encrypted_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/encrypted"
	"github.com/govss/vss/client/vsstest"
)

// ldkEntry is a key of an LDK Node store with its value.
type ldkEntry struct{ primary, secondary, key, value string }

// ldkEntries look like what LDK Node keeps: keys without namespaces, keys under a
// primary namespace only, and under both.
var ldkEntries = []ldkEntry{
	{"", "", "manager", "channel manager"},
	{"", "", "network_graph", "graph"},
	{"monitors", "", "abc_1", "monitor 1"},
	{"monitors", "", "def_0", "monitor 2"},
	{"payments", "", "p1", "payment"},
	{"bdk_wallet", "", "descriptor", "wallet descriptor"},
	{"ns", "sub", "k", "nested"},
}

func writeLDK(t *testing.T, l *encrypted.LDKStore) {
	t.Helper()
	for _, e := range ldkEntries {
		if err := l.Write(testCtx(t), e.primary, e.secondary, e.key, []byte(e.value)); err != nil {
			t.Fatalf("Write %v: %v", e, err)
		}
	}
}

// checkLDK reads every entry back, lists every namespace, and checks the storage keys
// and associated data of the layout against the raw store.
func checkLDK(t *testing.T, l *encrypted.LDKStore, w wallet) {
	t.Helper()
	ctx := testCtx(t)
	sealer := encrypted.NewSealer(w.keys.DataEncryptionKey)
	obf := encrypted.NewKeyObfuscator(w.keys.ObfuscationMasterKey)
	stored := rawKeys(t, w.raw, l.StoreID())
	for _, e := range ldkEntries {
		v, err := l.Read(ctx, e.primary, e.secondary, e.key)
		if err != nil || string(v) != e.value {
			t.Errorf("Read %s/%s/%s = %q, %v", e.primary, e.secondary, e.key, v, err)
		}
		// The layout, independently of LDKStore.StorageKey.
		var sk string
		var aad []byte
		switch {
		case l.Schema() == encrypted.LDKSchemaV1:
			sk = obf.Obfuscate(e.primary+"#"+e.secondary) + "#" + obf.Obfuscate(e.key)
			aad = []byte(sk)
		case e.primary == "":
			sk = obf.Obfuscate(e.key)
		default:
			sk = e.primary + "#" + e.secondary + "#" + obf.Obfuscate(e.key)
		}
		if !slices.Contains(stored, sk) {
			t.Errorf("%s/%s/%s is not stored under %s", e.primary, e.secondary, e.key, sk)
			continue
		}
		kv := rawGet(t, w.raw, l.StoreID(), sk)
		value, sealed, err := sealer.Open(kv.GetValue(), aad)
		if err != nil || string(value) != e.value || sealed != -1 || kv.GetVersion() != 1 {
			t.Errorf("%s opens as %q, sealed version %d, stored version %d, %v", sk, value, sealed, kv.GetVersion(), err)
		}
	}
	nss, err := l.ListNamespaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []encrypted.LDKNamespace{
		{"", "", []string{"manager", "network_graph"}},
		{"bdk_wallet", "", []string{"descriptor"}},
		{"monitors", "", []string{"abc_1", "def_0"}},
		{"ns", "sub", []string{"k"}},
		{"payments", "", []string{"p1"}},
	}
	if !slices.EqualFunc(nss, want, func(a, b encrypted.LDKNamespace) bool {
		return a.Primary == b.Primary && a.Secondary == b.Secondary && slices.Equal(a.Keys, b.Keys)
	}) {
		t.Errorf("ListNamespaces = %v, want %v", nss, want)
	}
	for _, n := range want {
		keys, err := l.ListKeys(ctx, n.Primary, n.Secondary)
		if err != nil || !slices.Equal(keys, n.Keys) {
			t.Errorf("ListKeys(%q, %q) = %v, %v; want %v", n.Primary, n.Secondary, keys, err, n.Keys)
		}
	}
	if keys, err := l.ListKeys(ctx, "ns", ""); err != nil || len(keys) != 0 {
		t.Errorf("ListKeys(ns, \"\") = %v, %v; want none", keys, err)
	}
}

func TestLDKStoreV1(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	w := newWallet(t, srv)
	ctx := testCtx(t)

	// A new store: V1, recorded as LDK Node records it.
	if s, recorded, err := encrypted.DetectLDKSchema(ctx, w.raw, w.keys, "ldk"); err != nil || s != encrypted.LDKSchemaV1 || recorded {
		t.Fatalf("DetectLDKSchema of a new store = %v, %v, %v", s, recorded, err)
	}
	if keys := rawKeys(t, w.raw, "ldk"); len(keys) != 0 {
		t.Fatalf("DetectLDKSchema wrote %v", keys)
	}
	l, err := encrypted.OpenLDK(ctx, w.raw, w.keys, "ldk")
	if err != nil || l.Schema() != encrypted.LDKSchemaV1 {
		t.Fatalf("OpenLDK = %v, %v", l, err)
	}
	obf := encrypted.NewKeyObfuscator(w.keys.ObfuscationMasterKey)
	record := obf.Obfuscate("#") + "#" + obf.Obfuscate("vss_schema_version")
	if keys := rawKeys(t, w.raw, "ldk"); !slices.Equal(keys, []string{record}) {
		t.Fatalf("after OpenLDK the store holds %v, want the schema record %s", keys, record)
	}
	v, sealed, err := encrypted.NewSealer(w.keys.DataEncryptionKey).Open(rawGet(t, w.raw, "ldk", record).GetValue(), []byte(record))
	if err != nil || string(v) != "\x01\x00" || sealed != -1 {
		t.Fatalf("schema record = %x, sealed %d, %v", v, sealed, err)
	}
	if s, recorded, err := encrypted.DetectLDKSchema(ctx, w.raw, w.keys, "ldk"); err != nil || s != encrypted.LDKSchemaV1 || !recorded {
		t.Fatalf("DetectLDKSchema after OpenLDK = %v, %v, %v", s, recorded, err)
	}

	writeLDK(t, l)
	for _, sk := range rawKeys(t, w.raw, "ldk") {
		if strings.Contains(sk, "monitors") || strings.Contains(sk, "bdk_wallet") {
			t.Errorf("V1 storage key %s shows a namespace", sk)
		}
	}
	checkLDK(t, l, w)

	// The record says V1 even though V0-looking wallet keys exist.
	if err := encrypted.NewLDKStore(w.raw, w.keys, "ldk", encrypted.LDKSchemaV0).Write(ctx, "bdk_wallet", "", "x", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if l2, err := encrypted.OpenLDK(ctx, w.raw, w.keys, "ldk"); err != nil || l2.Schema() != encrypted.LDKSchemaV1 {
		t.Fatalf("reopen = %v, %v", l2, err)
	}

	if err := l.Remove(ctx, "monitors", "", "abc_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(ctx, "monitors", "", "abc_1"); !vssclient.IsNotFound(err) {
		t.Fatalf("Read removed: %v", err)
	}
	if err := l.Remove(ctx, "monitors", "", "abc_1"); err != nil {
		t.Fatalf("Remove of a missing key: %v", err)
	}

	// V1 binds the namespaces and key: a value moved between namespaces is detected.
	from, _ := l.StorageKey("payments", "", "p1")
	to, _ := l.StorageKey("monitors", "", "def_0")
	rawPut(t, w.raw, "ldk", to, -1, rawGet(t, w.raw, "ldk", from).GetValue())
	_, err = l.Read(ctx, "monitors", "", "def_0")
	wantVerification(t, err, encrypted.KindAuthentication, to)

	// Another wallet's keys open nothing.
	other := newWallet(t, srv)
	_, err = encrypted.NewLDKStore(w.raw, other.keys, "ldk", encrypted.LDKSchemaV1).ListNamespaces(ctx)
	if _, ok := encrypted.IsVerification(err); !ok {
		t.Fatalf("ListNamespaces with other keys: %v", err)
	}
	if _, _, err := encrypted.DetectLDKSchema(ctx, w.raw, other.keys, "ldk"); err != nil {
		t.Fatalf("DetectLDKSchema with other keys: %v (the record is under another name)", err)
	}
}

func TestLDKStoreV0(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	w := newWallet(t, srv)
	ctx := testCtx(t)

	// What LDK Node wrote before it recorded a schema.
	writeLDK(t, encrypted.NewLDKStore(w.raw, w.keys, "old", encrypted.LDKSchemaV0))
	l, err := encrypted.OpenLDK(ctx, w.raw, w.keys, "old")
	if err != nil || l.Schema() != encrypted.LDKSchemaV0 {
		t.Fatalf("OpenLDK = %v, %v", l, err)
	}
	if keys := rawKeys(t, w.raw, "old"); len(keys) != len(ldkEntries) {
		t.Fatalf("OpenLDK of a V0 store wrote something: %v", keys)
	}
	if s, recorded, err := encrypted.DetectLDKSchema(ctx, w.raw, w.keys, "old"); err != nil || s != encrypted.LDKSchemaV0 || recorded {
		t.Fatalf("DetectLDKSchema = %v, %v, %v", s, recorded, err)
	}
	checkLDK(t, l, w)
	if !slices.Contains(rawKeys(t, w.raw, "old"), "monitors##"+encrypted.NewKeyObfuscator(w.keys.ObfuscationMasterKey).Obfuscate("abc_1")) {
		t.Error("V0 keeps the namespaces in clear")
	}

	// V0 seals with empty associated data: what it cannot detect, a value moved to
	// another key of the same wallet, stays undetected (LDK Node reads it the same).
	from, _ := l.StorageKey("payments", "", "p1")
	to, _ := l.StorageKey("monitors", "", "def_0")
	rawPut(t, w.raw, "old", to, -1, rawGet(t, w.raw, "old", from).GetValue())
	if v, err := l.Read(ctx, "monitors", "", "def_0"); err != nil || string(v) != "payment" {
		t.Fatalf("V0 read of a moved value = %q, %v", v, err)
	}
	// Tampering and other wallets' values it does detect.
	other := newWallet(t, srv)
	ol := encrypted.NewLDKStore(other.raw, other.keys, "old", encrypted.LDKSchemaV0)
	if err := ol.Write(ctx, "payments", "", "p1", []byte("other's")); err != nil {
		t.Fatal(err)
	}
	osk, _ := ol.StorageKey("payments", "", "p1")
	rawPut(t, w.raw, "old", from, -1, rawGet(t, other.raw, "old", osk).GetValue())
	_, err = l.Read(ctx, "payments", "", "p1")
	wantVerification(t, err, encrypted.KindAuthentication, from)
}

func TestLDKStoreRefusesInvalidNames(t *testing.T) {
	t.Parallel()
	l := encrypted.NewLDKStore(vssclient.New("http://127.0.0.1:1"), encrypted.KeysFromVSSSeed([32]byte{}), "s", encrypted.LDKSchemaV1)
	ctx := testCtx(t)
	for _, n := range [][3]string{
		{"", "", ""},
		{"", "sub", "k"},
		{"a#b", "", "k"},
		{"a", "", "k/1"},
		{"a", "", strings.Repeat("k", 121)},
	} {
		if _, err := l.Read(ctx, n[0], n[1], n[2]); !errors.Is(err, encrypted.ErrInvalidLDKName) {
			t.Errorf("Read %q: %v", n, err)
		}
		if err := l.Write(ctx, n[0], n[1], n[2], nil); !errors.Is(err, encrypted.ErrInvalidLDKName) {
			t.Errorf("Write %q: %v", n, err)
		}
	}
	if _, err := l.ListKeys(ctx, "", "sub"); !errors.Is(err, encrypted.ErrInvalidLDKName) {
		t.Errorf("ListKeys: %v", err)
	}
}
