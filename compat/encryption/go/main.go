// Command go is the Go side of the cross-language encryption test (compat/encryption/go.sh):
// it writes the fixture of the shared vectors file through the Go client's encrypted
// layer (client/encrypted), or reads what another language wrote and checks that it is
// exactly what the fixture expects, tampering cases included.
//
//	VSS_BASE_URL=http://127.0.0.1:PORT VSS_ENCRYPTION_VECTORS=compat/rust-client/encryption-vectors.json \
//	  go run ./compat/encryption/go write|read <store-id-prefix>
//
// The fixture is described in compat/rust-client/ENCRYPTION-VECTORS.md. The server runs
// without authentication (every request is the same user).
package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/encrypted"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/encvectors"
)

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "write" && os.Args[1] != "read") {
		fmt.Fprintln(os.Stderr, "usage: go write|read <store-id-prefix>  (with VSS_BASE_URL and VSS_ENCRYPTION_VECTORS set)")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "go %s %s: %v\n", os.Args[1], os.Args[2], err)
		os.Exit(1)
	}
}

func run(cmd, prefix string) error {
	base, path := os.Getenv("VSS_BASE_URL"), os.Getenv("VSS_ENCRYPTION_VECTORS")
	if base == "" || path == "" {
		return errors.New("VSS_BASE_URL and VSS_ENCRYPTION_VECTORS must be set")
	}
	v, err := encvectors.Load(path)
	if err != nil {
		return err
	}
	keys, err := encrypted.KeysFromWalletSeed(v.Fixture.WalletSeed)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// No retries: a failure must show, not be hidden by a second attempt.
	c := vssclient.New(base, vssclient.WithRetry(vssclient.RetryPolicy{MaxAttempts: 1}))
	if cmd == "write" {
		for _, s := range v.Fixture.Stores {
			if err := write(ctx, c, keys, prefix+s.StoreIDSuffix, s); err != nil {
				return fmt.Errorf("store %s%s: %w", prefix, s.StoreIDSuffix, err)
			}
		}
		fmt.Printf("go write %s: %d stores written\n", prefix, len(v.Fixture.Stores))
		return nil
	}
	r := &reader{ctx: ctx, c: c, keys: keys}
	for _, s := range v.Fixture.Stores {
		r.store(prefix+s.StoreIDSuffix, s)
	}
	for _, f := range r.failures {
		fmt.Fprintln(os.Stderr, "FAIL", f)
	}
	if len(r.failures) > 0 {
		return fmt.Errorf("%d of %d checks failed", len(r.failures), r.checks)
	}
	fmt.Printf("go read %s: %d checks passed\n", prefix, r.checks)
	return nil
}

// write runs a store's ops.
func write(ctx context.Context, c *vssclient.Client, keys encrypted.Keys, storeID string, s encvectors.FixtureStore) error {
	if raw, err := listRaw(ctx, c, storeID); err != nil || len(raw) > 0 {
		return fmt.Errorf("the store must be empty before writing (%d keys, %v)", len(raw), err)
	}
	store := encrypted.NewStore(c, keys)
	var ldk *encrypted.LDKStore
	saved := map[string][]byte{}
	for i, op := range s.Ops {
		var err error
		switch op.Op {
		case "put":
			items := make([]encrypted.Item, len(op.Items))
			for j, it := range op.Items {
				items[j] = encrypted.Item{Key: it.Key, Value: it.Value, Version: it.Version}
			}
			err = store.Put(ctx, storeID, items...)
		case "delete":
			err = store.Delete(ctx, storeID, op.Key, op.Version)
		case "ldk_open":
			switch op.Schema {
			case "V1":
				ldk, err = encrypted.OpenLDK(ctx, c, keys, storeID)
				if err == nil && ldk.Schema() != encrypted.LDKSchemaV1 {
					err = fmt.Errorf("OpenLDK chose %v", ldk.Schema())
				}
			case "V0":
				ldk = encrypted.NewLDKStore(c, keys, storeID, encrypted.LDKSchemaV0)
			default:
				err = fmt.Errorf("unknown schema %q", op.Schema)
			}
		case "ldk_write":
			err = ldk.Write(ctx, op.Primary, op.Secondary, op.Key, op.Value)
		case "ldk_remove":
			err = ldk.Remove(ctx, op.Primary, op.Secondary, op.Key)
		case "raw_copy":
			var kv *vssv1.KeyValue
			if kv, err = getRaw(ctx, c, storeID, op.From); err == nil {
				err = putRaw(ctx, c, storeID, op.To, op.Version, kv.GetValue())
			}
		case "raw_flip":
			var kv *vssv1.KeyValue
			if kv, err = getRaw(ctx, c, storeID, op.Key); err == nil {
				var st vssv1.Storable
				if err = proto.Unmarshal(kv.GetValue(), &st); err == nil && len(st.Data) > 0 {
					st.Data[0] ^= 0x01
					b, _ := proto.Marshal(&st)
					err = putRaw(ctx, c, storeID, op.Key, op.Version, b)
				}
			}
		case "raw_save":
			var kv *vssv1.KeyValue
			if kv, err = getRaw(ctx, c, storeID, op.Key); err == nil {
				saved[op.Key] = kv.GetValue()
			}
		case "raw_restore":
			b, ok := saved[op.Key]
			if !ok {
				err = errors.New("nothing saved under that key")
			} else {
				err = putRaw(ctx, c, storeID, op.Key, op.Version, b)
			}
		default:
			err = errors.New("unknown op")
		}
		if err != nil {
			return fmt.Errorf("op %d (%s): %w", i+1, op.Op, err)
		}
	}
	return nil
}

func getRaw(ctx context.Context, c *vssclient.Client, storeID, key string) (*vssv1.KeyValue, error) {
	resp, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: storeID, Key: key})
	return resp.GetValue(), err
}

func putRaw(ctx context.Context, c *vssclient.Client, storeID, key string, version int64, value []byte) error {
	_, err := c.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: storeID,
		TransactionItems: []*vssv1.KeyValue{{Key: key, Version: version, Value: value}}})
	return err
}

func listRaw(ctx context.Context, c *vssclient.Client, storeID string) ([]encvectors.RawKey, error) {
	resp, err := c.ListAll(ctx, &vssv1.ListKeyVersionsRequest{StoreId: storeID})
	if err != nil {
		return nil, err
	}
	var out []encvectors.RawKey
	for _, kv := range resp.GetKeyVersions() {
		out = append(out, encvectors.RawKey{StoreKey: kv.GetKey(), Version: kv.GetVersion()})
	}
	slices.SortFunc(out, func(a, b encvectors.RawKey) int { return cmp.Compare(a.StoreKey, b.StoreKey) })
	return out, nil
}

// reader checks stores against the fixture and collects every failure.
type reader struct {
	ctx      context.Context
	c        *vssclient.Client
	keys     encrypted.Keys
	checks   int
	failures []string
}

func (r *reader) check(ok bool, format string, args ...any) {
	r.checks++
	if !ok {
		r.failures = append(r.failures, fmt.Sprintf(format, args...))
	}
}

func (r *reader) store(storeID string, s encvectors.FixtureStore) {
	raw, err := listRaw(r.ctx, r.c, storeID)
	r.check(err == nil && slices.Equal(raw, s.Expect.RawKeys), "%s: the raw listing is %v (%v), want %v", storeID, raw, err, s.Expect.RawKeys)
	switch s.Layout {
	case "vss-client-ng":
		r.plain(storeID, s.Expect)
	case "ldk":
		r.ldk(storeID, s.Expect)
	default:
		r.check(false, "%s: unknown layout %q", storeID, s.Layout)
	}
}

func (r *reader) plain(storeID string, e encvectors.Expect) {
	store := encrypted.NewStore(r.c, r.keys)
	list, err := store.List(r.ctx, storeID)
	var got []encvectors.KeyVersion
	for _, kv := range list {
		got = append(got, encvectors.KeyVersion{Key: kv.Key, Version: kv.Version})
	}
	slices.SortFunc(got, func(a, b encvectors.KeyVersion) int { return cmp.Compare(a.Key, b.Key) })
	r.check(err == nil && slices.Equal(got, e.List), "%s: List = %v (%v), want %v", storeID, got, err, e.List)
	for _, rd := range e.Reads {
		name := fmt.Sprintf("%s: Get(%q)", storeID, rd.Key)
		sk := store.StorageKey(rd.Key)
		r.check(sk == rd.StoreKey, "%s: stored under %s, want %s", name, sk, rd.StoreKey)
		value, version, err := store.Get(r.ctx, storeID, rd.Key)
		r.outcome(name, storeID, rd, value, version, err, []byte(sk))
	}
}

func (r *reader) ldk(storeID string, e encvectors.Expect) {
	schema, recorded, err := encrypted.DetectLDKSchema(r.ctx, r.c, r.keys, storeID)
	r.check(err == nil && schema.String() == e.Schema && recorded == (schema == encrypted.LDKSchemaV1),
		"%s: the detected schema is %v (recorded %v, %v), want %s", storeID, schema, recorded, err, e.Schema)
	if err != nil {
		return
	}
	l := encrypted.NewLDKStore(r.c, r.keys, storeID, schema)
	nss, err := l.ListNamespaces(r.ctx)
	var got []encvectors.LDKNamespace
	for _, n := range nss {
		got = append(got, encvectors.LDKNamespace{Primary: n.Primary, Secondary: n.Secondary, Keys: n.Keys})
	}
	r.check(err == nil && slices.EqualFunc(got, e.Namespaces, equalNS), "%s: ListNamespaces = %v (%v), want %v", storeID, got, err, e.Namespaces)
	for _, n := range e.Namespaces {
		keys, err := l.ListKeys(r.ctx, n.Primary, n.Secondary)
		r.check(err == nil && slices.Equal(keys, n.Keys), "%s: ListKeys(%q, %q) = %v (%v), want %v", storeID, n.Primary, n.Secondary, keys, err, n.Keys)
	}
	for _, rd := range e.Reads {
		name := fmt.Sprintf("%s: Read(%q, %q, %q)", storeID, rd.Primary, rd.Secondary, rd.Key)
		sk, aad := l.StorageKey(rd.Primary, rd.Secondary, rd.Key)
		r.check(sk == rd.StoreKey, "%s: stored under %s, want %s", name, sk, rd.StoreKey)
		value, err := l.Read(r.ctx, rd.Primary, rd.Secondary, rd.Key)
		var version int64
		if err == nil {
			kv, gerr := getRaw(r.ctx, r.c, storeID, sk)
			version, err = kv.GetVersion(), gerr
		}
		r.outcome(name, storeID, rd, value, version, err, aad)
	}
}

// outcome checks a read against the fixture: the error kind it must fail with, or the
// value, server version and sealed version it must give.
func (r *reader) outcome(name, storeID string, rd encvectors.Read, value []byte, version int64, err error, aad []byte) {
	if rd.Error != nil {
		var v *encrypted.VerificationError
		r.check(errors.As(err, &v) && v.Kind.String() == *rd.Error && v.Key == rd.StoreKey && value == nil,
			"%s: got %d bytes and error %v, want a %s VerificationError for %s and no data", name, len(value), err, *rd.Error, rd.StoreKey)
		return
	}
	r.check(err == nil && bytes.Equal(value, rd.Value) && version == rd.Version,
		"%s = %d bytes at version %d (%v), want %d bytes at version %d", name, len(value), version, err, len(rd.Value), rd.Version)
	if err != nil {
		return
	}
	// The version sealed inside, read from the stored bytes.
	kv, err := getRaw(r.ctx, r.c, storeID, rd.StoreKey)
	var sealed int64
	if err == nil {
		_, sealed, err = encrypted.NewSealer(r.keys.DataEncryptionKey).Open(kv.GetValue(), aad)
	}
	r.check(err == nil && sealed == rd.SealedVersion, "%s: sealed version %d (%v), want %d", name, sealed, err, rd.SealedVersion)
}

func equalNS(a, b encvectors.LDKNamespace) bool {
	return a.Primary == b.Primary && a.Secondary == b.Secondary && slices.Equal(a.Keys, b.Keys)
}
