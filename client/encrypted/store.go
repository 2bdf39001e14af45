package encrypted

import (
	"context"
	"fmt"

	vssclient "github.com/govss/vss/client"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// Writer is what the writes of a Store or LDKStore go through: by default the
// vssclient.Client they were made with; a *vssclient.Lease fences them with its token.
type Writer interface {
	PutObjects(context.Context, *vssv1.PutObjectRequest) (*vssv1.PutObjectResponse, error)
	DeleteObject(context.Context, *vssv1.DeleteObjectRequest) (*vssv1.DeleteObjectResponse, error)
}

// core is what Store and LDKStore share: the client, the writer and the two ciphers.
type core struct {
	c      *vssclient.Client
	w      Writer
	obf    *KeyObfuscator
	sealer *Sealer
}

func newCore(c *vssclient.Client, keys Keys) core {
	return core{c: c, w: c, obf: NewKeyObfuscator(keys.ObfuscationMasterKey), sealer: NewSealer(keys.DataEncryptionKey)}
}

// get reads storageKey and returns its verified value and the server's version.
func (k *core) get(ctx context.Context, storeID, storageKey string, aad []byte) ([]byte, int64, error) {
	resp, err := k.c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: storeID, Key: storageKey})
	if err != nil {
		return nil, 0, err
	}
	served := resp.GetValue().GetVersion()
	value, sealed, err := k.sealer.Open(resp.GetValue().GetValue(), aad)
	if err != nil {
		return nil, 0, withKey(err, storageKey)
	}
	if err := verifyVersion(storageKey, sealed, served); err != nil {
		return nil, 0, err
	}
	return value, served, nil
}

// verifyVersion checks the version sealed in a value against the version the server
// reports for it. A writer seals the version its write was sent with, so a conditional
// write of version N (0 creates) stores N+1; a write sent with -1 (unconditional, as LDK
// Node writes) seals -1 and leaves nothing to compare.
func verifyVersion(storageKey string, sealed, served int64) error {
	if sealed == -1 || served == sealed+1 {
		return nil
	}
	return &VerificationError{Kind: KindVersion, Key: storageKey, Sealed: sealed, Served: served,
		Reason: fmt.Sprintf("the value was sealed by a write of version %d, which stores version %d, but the server reports version %d", sealed, sealed+1, served)}
}

// Store is a VSS store whose key names and values the server cannot read, and whose
// reads are verified, written the way vss-client-ng applications write: each key name
// is obfuscated with the KeyObfuscator, each value is sealed (Sealer) with the
// obfuscated name as associated data and with the version its write is sent with.
// Reads fail with a *VerificationError, never with data, when a value does not verify:
// see the package documentation for what that detects. It calls the server through a
// vssclient.Client, so authentication, retries, timeouts and the device id apply. A
// Store is safe for concurrent use.
type Store struct {
	core
}

// NewStore returns the encrypted store of c with keys.
func NewStore(c *vssclient.Client, keys Keys) *Store {
	return &Store{core: newCore(c, keys)}
}

// WithWriter returns a Store whose writes go through w, for example a *vssclient.Lease
// (which fences them with its token), and whose reads go through the client as before.
func (s *Store) WithWriter(w Writer) *Store {
	c := *s
	c.w = w
	return &c
}

// StorageKey returns the name key is stored under on the server (its obfuscated name).
func (s *Store) StorageKey(key string) string { return s.obf.Obfuscate(key) }

// Item is a key to write with its value and the version the write is conditional on:
// 0 creates the key, N updates version N, -1 writes whatever is stored. For deletes
// (Batch.Deletes) the value is ignored.
type Item struct {
	Key     string
	Value   []byte
	Version int64
}

// KeyVersion is a key name, in clear, with its version on the server.
type KeyVersion struct {
	Key     string
	Version int64
}

// Batch is an all-or-nothing write: keys to write, keys to delete (with the version
// each delete is conditional on, -1 for any), and optionally the global version to
// check and bump.
type Batch struct {
	Items         []Item
	Deletes       []Item
	GlobalVersion *int64
}

// Get returns the value of key and its version on the server, once verified. A missing
// key is the client's error (vssclient.IsNotFound).
func (s *Store) Get(ctx context.Context, storeID, key string) ([]byte, int64, error) {
	sk := s.obf.Obfuscate(key)
	return s.get(ctx, storeID, sk, []byte(sk))
}

// Put writes items all or nothing. A version mismatch is the client's error
// (vssclient.IsConflict) and nothing is written.
func (s *Store) Put(ctx context.Context, storeID string, items ...Item) error {
	return s.PutBatch(ctx, storeID, Batch{Items: items})
}

// PutBatch writes and deletes keys, and checks and bumps the global version when b has
// one, all or nothing.
func (s *Store) PutBatch(ctx context.Context, storeID string, b Batch) error {
	req := &vssv1.PutObjectRequest{StoreId: storeID, GlobalVersion: b.GlobalVersion}
	for _, it := range b.Items {
		sk := s.obf.Obfuscate(it.Key)
		req.TransactionItems = append(req.TransactionItems, &vssv1.KeyValue{
			Key: sk, Version: it.Version, Value: s.sealer.Seal(it.Value, it.Version, []byte(sk))})
	}
	for _, it := range b.Deletes {
		req.DeleteItems = append(req.DeleteItems, &vssv1.KeyValue{Key: s.obf.Obfuscate(it.Key), Version: it.Version})
	}
	_, err := s.w.PutObjects(ctx, req)
	return err
}

// Delete deletes key if its version is version (-1: any version). Like DeleteObject it
// succeeds when the key is missing or its version differs.
func (s *Store) Delete(ctx context.Context, storeID, key string, version int64) error {
	_, err := s.w.DeleteObject(ctx, &vssv1.DeleteObjectRequest{StoreId: storeID,
		KeyValue: &vssv1.KeyValue{Key: s.obf.Obfuscate(key), Version: version}})
	return err
}

// List returns every key of the store, in clear, with its version, in the server's
// order (newest created first), following every page. A stored name that does not
// deobfuscate with these keys is a *VerificationError of KindFormat.
func (s *Store) List(ctx context.Context, storeID string) ([]KeyVersion, error) {
	resp, err := s.c.ListAll(ctx, &vssv1.ListKeyVersionsRequest{StoreId: storeID})
	if err != nil {
		return nil, err
	}
	return s.deobfuscateAll(resp.GetKeyVersions())
}

// ListPage returns one page of keys, in clear, with their versions, and the token of
// the next page ("" after the last). pageToken "" asks for the first page; pageSize 0
// for the server's page size.
func (s *Store) ListPage(ctx context.Context, storeID, pageToken string, pageSize int32) ([]KeyVersion, string, error) {
	req := &vssv1.ListKeyVersionsRequest{StoreId: storeID}
	if pageToken != "" {
		req.PageToken = &pageToken
	}
	if pageSize > 0 {
		req.PageSize = &pageSize
	}
	resp, err := s.c.ListKeyVersions(ctx, req)
	if err != nil {
		return nil, "", err
	}
	out, err := s.deobfuscateAll(resp.GetKeyVersions())
	return out, resp.GetNextPageToken(), err
}

func (s *Store) deobfuscateAll(kvs []*vssv1.KeyValue) ([]KeyVersion, error) {
	out := make([]KeyVersion, 0, len(kvs))
	for _, kv := range kvs {
		key, err := s.obf.Deobfuscate(kv.GetKey())
		if err != nil {
			return nil, err
		}
		out = append(out, KeyVersion{Key: key, Version: kv.GetVersion()})
	}
	return out, nil
}
