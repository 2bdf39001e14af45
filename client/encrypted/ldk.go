package encrypted

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	vssclient "github.com/govss/vss/client"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// LDKSchema is a generation of LDK Node's key layout (VssSchemaVersion in
// src/io/vss_store.rs, LDK Node commit 77f9564e).
type LDKSchema int

// LDK Node's schema generations.
const (
	// LDKSchemaV0 stores primary#secondary#obfuscate(key) (the namespaces in clear), or
	// obfuscate(key) alone when both namespaces are empty, and seals values with empty
	// associated data.
	LDKSchemaV0 LDKSchema = 0
	// LDKSchemaV1 stores obfuscate(primary#secondary)#obfuscate(key) and seals values
	// with that whole storage key as associated data.
	LDKSchemaV1 LDKSchema = 1
)

// String returns "V0" or "V1".
func (s LDKSchema) String() string { return fmt.Sprintf("V%d", int(s)) }

const (
	// ldkSchemaKey is where LDK Node records its schema generation (empty namespaces).
	ldkSchemaKey = "vss_schema_version"
	// ldkV0WalletPrefix marks a store LDK Node wrote before it recorded a schema: its
	// BDK wallet keys, namespaces in clear.
	ldkV0WalletPrefix = "bdk_wallet#"
	// ldkMaxName and ldkNameAlphabet are LDK's rules for namespaces and keys
	// (KVSTORE_NAMESPACE_KEY_MAX_LEN, KVSTORE_NAMESPACE_KEY_ALPHABET).
	ldkMaxName      = 120
	ldkNameAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
)

// ErrInvalidLDKName is what LDKStore's methods fail with, without calling the server,
// for a namespace or key LDK Node would refuse: an empty key, a secondary namespace
// without a primary one, more than 120 characters, or a character other than ASCII
// letters, digits, '_' and '-'.
var ErrInvalidLDKName = errors.New("encrypted: invalid LDK namespace or key")

// LDKStore reads and writes a store the way LDK Node's VssStore does (src/io/vss_store.rs,
// LDK Node commit 77f9564e), in either schema generation, so that an application with
// the wallet seed can list, read and write what an LDK Node wallet keeps: keys named by
// a primary namespace, a secondary namespace and a key. Writes are unconditional
// (version -1) and removes delete any version, as LDK Node's. Values are verified as
// Store's are; see the package documentation for what each generation lets a reader
// verify. An LDKStore is safe for concurrent use.
type LDKStore struct {
	core
	storeID string
	schema  LDKSchema
}

// LDKNamespace is a pair of namespaces with the keys stored under it, in clear.
type LDKNamespace struct {
	Primary, Secondary string
	Keys               []string
}

// OpenLDK opens the LDK Node store storeID as LDK Node does on start: it reads the
// recorded schema generation; when there is none, the store is V0 if LDK Node's V0 wallet
// keys (bdk_wallet#…) exist, and otherwise new: it is V1 and, like LDK Node, OpenLDK
// records that. DetectLDKSchema and NewLDKStore open a store without writing.
func OpenLDK(ctx context.Context, c *vssclient.Client, keys Keys, storeID string) (*LDKStore, error) {
	l := NewLDKStore(c, keys, storeID, LDKSchemaV1)
	schema, recorded, err := l.detect(ctx)
	if err != nil {
		return nil, err
	}
	l.schema = schema
	if !recorded && schema == LDKSchemaV1 {
		sk := l.schemaStorageKey()
		v := int64(-1)
		if _, err := l.w.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: storeID, TransactionItems: []*vssv1.KeyValue{{
			Key: sk, Version: v, Value: l.sealer.Seal(encodeLDKSchema(LDKSchemaV1), v, []byte(sk))}}}); err != nil {
			return nil, fmt.Errorf("encrypted: record the LDK schema: %w", err)
		}
	}
	return l, nil
}

// DetectLDKSchema finds the schema generation of an LDK Node store as OpenLDK does,
// without writing anything: recorded says whether the store records it (a new or empty
// store gives V1, not recorded).
func DetectLDKSchema(ctx context.Context, c *vssclient.Client, keys Keys, storeID string) (schema LDKSchema, recorded bool, err error) {
	return NewLDKStore(c, keys, storeID, LDKSchemaV1).detect(ctx)
}

// NewLDKStore returns the LDK Node store storeID in the given schema generation,
// without calling the server.
func NewLDKStore(c *vssclient.Client, keys Keys, storeID string, schema LDKSchema) *LDKStore {
	return &LDKStore{core: newCore(c, keys), storeID: storeID, schema: schema}
}

// WithWriter returns an LDKStore whose writes go through w, for example a
// *vssclient.Lease.
func (l *LDKStore) WithWriter(w Writer) *LDKStore {
	c := *l
	c.w = w
	return &c
}

// Schema returns the store's schema generation.
func (l *LDKStore) Schema() LDKSchema { return l.schema }

// StoreID returns the store id.
func (l *LDKStore) StoreID() string { return l.storeID }

func (l *LDKStore) schemaStorageKey() string {
	return l.obf.Obfuscate("#") + "#" + l.obf.Obfuscate(ldkSchemaKey)
}

func (l *LDKStore) detect(ctx context.Context) (LDKSchema, bool, error) {
	sk := l.schemaStorageKey()
	value, _, err := l.get(ctx, l.storeID, sk, []byte(sk))
	switch {
	case err == nil:
		s, err := decodeLDKSchema(value)
		if err != nil {
			return 0, false, withKey(err, sk)
		}
		return s, true, nil
	case !vssclient.IsNotFound(err):
		return 0, false, err
	}
	resp, err := l.c.ListKeyVersions(ctx, &vssv1.ListKeyVersionsRequest{StoreId: l.storeID, KeyPrefix: ptr(ldkV0WalletPrefix)})
	if err != nil {
		return 0, false, err
	}
	if len(resp.GetKeyVersions()) > 0 {
		return LDKSchemaV0, false, nil
	}
	return LDKSchemaV1, false, nil
}

// encodeLDKSchema is LDK's serialization of a VssSchemaVersion
// (impl_writeable_tlv_based_enum): the variant's byte, then its empty TLV stream's
// length, 0.
func encodeLDKSchema(s LDKSchema) []byte { return []byte{byte(s), 0} }

func decodeLDKSchema(b []byte) (LDKSchema, error) {
	if len(b) < 2 || b[0] > 1 {
		return 0, formatError("", "the recorded LDK schema version is not V0 or V1")
	}
	return LDKSchema(b[0]), nil
}

// StorageKey returns the name LDK Node stores primary/secondary/key under, and the
// associated data its value is sealed with.
func (l *LDKStore) StorageKey(primary, secondary, key string) (storageKey string, aad []byte) {
	if l.schema == LDKSchemaV1 {
		sk := l.obf.Obfuscate(primary+"#"+secondary) + "#" + l.obf.Obfuscate(key)
		return sk, []byte(sk)
	}
	if primary == "" {
		return l.obf.Obfuscate(key), nil
	}
	return primary + "#" + secondary + "#" + l.obf.Obfuscate(key), nil
}

// Read returns the verified value of primary/secondary/key. A missing key is the
// client's error (vssclient.IsNotFound).
func (l *LDKStore) Read(ctx context.Context, primary, secondary, key string) ([]byte, error) {
	if err := checkLDKNames(primary, secondary, &key); err != nil {
		return nil, err
	}
	sk, aad := l.StorageKey(primary, secondary, key)
	value, _, err := l.get(ctx, l.storeID, sk, aad)
	return value, err
}

// Write stores value under primary/secondary/key unconditionally, as LDK Node does
// (version -1, sealed with version -1).
func (l *LDKStore) Write(ctx context.Context, primary, secondary, key string, value []byte) error {
	if err := checkLDKNames(primary, secondary, &key); err != nil {
		return err
	}
	sk, aad := l.StorageKey(primary, secondary, key)
	_, err := l.w.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: l.storeID, TransactionItems: []*vssv1.KeyValue{{
		Key: sk, Version: -1, Value: l.sealer.Seal(value, -1, aad)}}})
	return err
}

// Remove deletes primary/secondary/key, whatever its version; a missing key is not an
// error.
func (l *LDKStore) Remove(ctx context.Context, primary, secondary, key string) error {
	if err := checkLDKNames(primary, secondary, &key); err != nil {
		return err
	}
	sk, _ := l.StorageKey(primary, secondary, key)
	_, err := l.w.DeleteObject(ctx, &vssv1.DeleteObjectRequest{StoreId: l.storeID, KeyValue: &vssv1.KeyValue{Key: sk, Version: -1}})
	return err
}

// ListKeys returns the keys, in clear, stored under primary/secondary, sorted. The
// schema record LDK Node keeps under the empty namespaces is not listed. Unlike LDK
// Node's own list, a V0 listing of the empty namespaces finds the keys stored without
// namespaces, and a V0 listing of "a"/"b" does not also return the keys of "a"/"bc".
func (l *LDKStore) ListKeys(ctx context.Context, primary, secondary string) ([]string, error) {
	if err := checkLDKNames(primary, secondary, nil); err != nil {
		return nil, err
	}
	req := &vssv1.ListKeyVersionsRequest{StoreId: l.storeID}
	prefix := l.listPrefix(primary, secondary)
	if prefix != "" {
		req.KeyPrefix = &prefix
	}
	resp, err := l.c.ListAll(ctx, req)
	if err != nil {
		return nil, err
	}
	keys := []string{}
	for _, kv := range resp.GetKeyVersions() {
		sk := kv.GetKey()
		obfuscated, ok := strings.CutPrefix(sk, prefix)
		if !ok || (prefix == "" && strings.Contains(sk, "#")) {
			continue // another namespace (V0 empty namespaces list the whole store)
		}
		key, err := l.obf.Deobfuscate(obfuscated)
		if err != nil {
			return nil, withKey(err, sk)
		}
		if l.isSchemaRecord(primary, secondary, key) {
			continue
		}
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys, nil
}

// isSchemaRecord reports whether primary/secondary/key is the schema record LDK Node
// keeps in a V1 store (under the empty namespaces), which listings leave out.
func (l *LDKStore) isSchemaRecord(primary, secondary, key string) bool {
	return l.schema == LDKSchemaV1 && primary == "" && secondary == "" && key == ldkSchemaKey
}

// listPrefix is what the storage keys of primary/secondary start with: LDK Node's
// build_obfuscated_prefix and the '#' after it; empty for V0's empty namespaces, whose
// keys are stored bare.
func (l *LDKStore) listPrefix(primary, secondary string) string {
	switch {
	case l.schema == LDKSchemaV1:
		return l.obf.Obfuscate(primary+"#"+secondary) + "#"
	case primary != "":
		return primary + "#" + secondary + "#"
	}
	return ""
}

// ListNamespaces returns every pair of namespaces in the store with its keys, in clear,
// sorted (LDK Node's list_all_keys), without the schema record.
func (l *LDKStore) ListNamespaces(ctx context.Context) ([]LDKNamespace, error) {
	resp, err := l.c.ListAll(ctx, &vssv1.ListKeyVersionsRequest{StoreId: l.storeID})
	if err != nil {
		return nil, err
	}
	type ns struct{ primary, secondary string }
	byNS := map[ns][]string{}
	for _, kv := range resp.GetKeyVersions() {
		p, s, k, err := l.parse(kv.GetKey())
		if err != nil {
			return nil, err
		}
		if l.isSchemaRecord(p, s, k) {
			continue
		}
		byNS[ns{p, s}] = append(byNS[ns{p, s}], k)
	}
	out := make([]LDKNamespace, 0, len(byNS))
	for n, keys := range byNS {
		sort.Strings(keys)
		out = append(out, LDKNamespace{Primary: n.primary, Secondary: n.secondary, Keys: keys})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Primary != out[j].Primary {
			return out[i].Primary < out[j].Primary
		}
		return out[i].Secondary < out[j].Secondary
	})
	return out, nil
}

// parse splits a storage key of the store's layout into namespaces and key, in clear.
func (l *LDKStore) parse(sk string) (primary, secondary, key string, err error) {
	if l.schema == LDKSchemaV1 {
		obfNS, obfKey, ok := strings.Cut(sk, "#")
		if !ok {
			return "", "", "", formatError(sk, "not an LDK V1 storage key (no '#')")
		}
		namespace, err := l.obf.Deobfuscate(obfNS)
		if err != nil {
			return "", "", "", withKey(err, sk)
		}
		if primary, secondary, ok = strings.Cut(namespace, "#"); !ok {
			return "", "", "", formatError(sk, "the deobfuscated namespace has no '#'")
		}
		key, err = l.obf.Deobfuscate(obfKey)
		return primary, secondary, key, withKey(err, sk)
	}
	parts := strings.SplitN(sk, "#", 3)
	switch len(parts) {
	case 1:
		key, err = l.obf.Deobfuscate(sk)
		return "", "", key, err
	case 3:
		key, err = l.obf.Deobfuscate(parts[2])
		return parts[0], parts[1], key, withKey(err, sk)
	}
	return "", "", "", formatError(sk, "not an LDK V0 storage key (one '#')")
}

// checkLDKNames applies LDK's rules (check_namespace_key_validity); key is nil for a
// listing.
func checkLDKNames(primary, secondary string, key *string) error {
	if key != nil && *key == "" {
		return fmt.Errorf("%w: the key is empty", ErrInvalidLDKName)
	}
	if primary == "" && secondary != "" {
		return fmt.Errorf("%w: a secondary namespace needs a primary namespace", ErrInvalidLDKName)
	}
	names := []string{primary, secondary}
	if key != nil {
		names = append(names, *key)
	}
	for _, n := range names {
		if len(n) > ldkMaxName || strings.Trim(n, ldkNameAlphabet) != "" {
			return fmt.Errorf("%w: %q (at most %d characters of A-Z, a-z, 0-9, '_' and '-')", ErrInvalidLDKName, n, ldkMaxName)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
