package conformance_test

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/conformance"
	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/server"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/postgres"
	"github.com/govss/vss/storage/sqlite"
)

// wide returns n characters of 4 bytes each in UTF-8, drawn at random from the planes
// above the BMP so that PostgreSQL cannot compress them into a smaller index entry.
func wide(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteRune(rune(0x10000 + rng.IntN(0x10FFFF-0x10000+1)))
	}
	return b.String()
}

func wantFailure(t *testing.T, what string, err error, code vssv1.ErrorCode, msg string) {
	t.Helper()
	var f *conformance.Failure
	switch {
	case !errors.As(err, &f):
		t.Errorf("%s: got %v, want %s", what, err, code)
	case f.Code != code:
		t.Errorf("%s: got %s (%q), want %s", what, f.Code, f.Message, code)
	case !strings.Contains(f.Message, msg):
		t.Errorf("%s: message %q does not say %q", what, f.Message, msg)
	}
}

// TestKeyAndStoreIDBytes writes, at the byte limits, keys and store ids of 4-byte
// characters that the indexes cannot compress, as the longest user, on every store and
// through both kinds of binding: a key that brings the user, the store id of
// server.MaxStoreIDLength such characters and itself to server.MaxEntryBytes is stored,
// read back, listed and deleted; a key one byte longer, or of server.MaxKeyLength such
// characters (within the character limit, beyond PostgreSQL's index entry limit), is
// INVALID_REQUEST with a message that says why, on every store alike, never a 500. A
// signature user's key of server.MaxKeyLength such characters in the empty store id
// fits, as it does on the reference server.
func TestKeyAndStoreIDBytes(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			base := serve(t, st.open(t), 0)
			rng := rand.New(rand.NewPCG(1, 2))
			for _, b := range conformance.Bindings(conformance.TestUser)[:2] {
				c := b.New(base)
				ctx := context.Background()
				user := wide(rng, server.MaxUserLength)
				store := wide(rng, server.MaxStoreIDLength)
				room := server.MaxEntryBytes - len(user) - len(store) // 1600: a multiple of 4
				atLimit := wide(rng, room/4)
				overLimit := wide(rng, room/4-1) + "12345" // one byte more
				tooWide := wide(rng, server.MaxKeyLength)

				if _, err := c.PutObjects(ctx, user, &vssv1.PutObjectRequest{StoreId: store, GlobalVersion: i64(0), TransactionItems: []*vssv1.KeyValue{
					{Key: atLimit, Version: 0, Value: []byte("v")},
					{Key: atLimit[:len(atLimit)-4] + "a", Version: -1, Value: []byte("w")},
				}}); err != nil {
					t.Fatalf("%s: put keys of %d bytes: %v", b.Name, len(atLimit), err)
				}
				if _, err := c.PutObjects(ctx, user, &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{{Key: atLimit, Version: 1, Value: []byte("v2")}}}); err != nil {
					t.Fatalf("%s: update: %v", b.Name, err)
				}
				got, err := c.GetObject(ctx, user, &vssv1.GetObjectRequest{StoreId: store, Key: atLimit})
				if err != nil || got.GetValue().GetKey() != atLimit || got.GetValue().GetVersion() != 2 || string(got.GetValue().GetValue()) != "v2" {
					t.Fatalf("%s: get: %v, %v", b.Name, got, err)
				}
				list, err := c.ListKeyVersions(ctx, user, &vssv1.ListKeyVersionsRequest{StoreId: store, KeyPrefix: str(atLimit[:40])})
				if err != nil || len(list.GetKeyVersions()) != 2 || list.GetKeyVersions()[0].GetKey() != atLimit[:len(atLimit)-4]+"a" || list.GetKeyVersions()[1].GetKey() != atLimit || list.GetGlobalVersion() != 1 {
					t.Fatalf("%s: list: %v, %v", b.Name, list, err)
				}
				if _, err := c.PutObjects(ctx, user, &vssv1.PutObjectRequest{StoreId: store, DeleteItems: []*vssv1.KeyValue{{Key: atLimit, Version: 2}}}); err != nil {
					t.Fatalf("%s: delete item: %v", b.Name, err)
				}
				if _, err := c.DeleteObject(ctx, user, &vssv1.DeleteObjectRequest{StoreId: store, KeyValue: &vssv1.KeyValue{Key: atLimit[:len(atLimit)-4] + "a", Version: -1}}); err != nil {
					t.Fatalf("%s: delete: %v", b.Name, err)
				}

				for name, key := range map[string]string{"one byte over": overLimit, "600 wide characters": tooWide} {
					what := b.Name + ": " + name
					_, err := c.PutObjects(ctx, user, &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{{Key: key, Version: -1, Value: []byte("v")}}})
					wantFailure(t, what+": put", err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, "bytes")
					_, err = c.PutObjects(ctx, user, &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 0}, {Key: key, Version: 0}}})
					wantFailure(t, what+": create", err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, "bytes")
					_, err = c.PutObjects(ctx, user, &vssv1.PutObjectRequest{StoreId: store, DeleteItems: []*vssv1.KeyValue{{Key: key, Version: -1}}})
					wantFailure(t, what+": delete item", err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, "bytes")
					_, err = c.GetObject(ctx, user, &vssv1.GetObjectRequest{StoreId: store, Key: key})
					wantFailure(t, what+": get", err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, "bytes")
					_, err = c.DeleteObject(ctx, user, &vssv1.DeleteObjectRequest{StoreId: store, KeyValue: &vssv1.KeyValue{Key: key, Version: -1}})
					wantFailure(t, what+": delete", err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, "bytes")
				}
				sigUser := strings.Repeat("02", 33)
				if _, err := c.PutObjects(ctx, sigUser, &vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{{Key: tooWide, Version: 0, Value: []byte("v")}}}); err != nil {
					t.Fatalf("%s: a signature user's key of %d characters (%d bytes): %v", b.Name, server.MaxKeyLength, len(tooWide), err)
				}
				if got, err := c.GetObject(ctx, sigUser, &vssv1.GetObjectRequest{Key: tooWide}); err != nil || got.GetValue().GetVersion() != 1 {
					t.Fatalf("%s: read back the signature user's wide key: %v, %v", b.Name, got, err)
				}
				_, err = c.PutObjects(ctx, user, &vssv1.PutObjectRequest{StoreId: store + "x", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1}}})
				wantFailure(t, b.Name+": store id of 121 characters", err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, "characters")

				list, err = c.ListKeyVersions(ctx, user, &vssv1.ListKeyVersionsRequest{StoreId: store})
				if err != nil || len(list.GetKeyVersions()) != 0 {
					t.Fatalf("%s: after the refusals the store holds %v (%v), want nothing", b.Name, list.GetKeyVersions(), err)
				}
			}
		})
	}
}

// storeWithSQL opens a store of the named kind together with a way to run SQL on its
// database directly, to set up rows the service would never write.
var storesWithSQL = []struct {
	name string
	open func(t *testing.T) (storage.Store, func(query string, args ...any))
}{
	{"postgres", func(t *testing.T) (storage.Store, func(string, ...any)) {
		url := pgtest.NewDatabase(t)
		s, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		return s, func(query string, args ...any) {
			t.Helper()
			if _, err := conn.Exec(context.Background(), query, args...); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		}
	}},
	{"embedded", func(t *testing.T) (storage.Store, func(string, ...any)) {
		path := filepath.Join(t.TempDir(), "vss.db")
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return s, func(query string, args ...any) {
			t.Helper()
			if _, err := db.Exec(query, args...); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		}
	}},
}

// TestLargestVersion seeds, directly in each database, a key and a store's global
// version at the largest version, 2^63-1. A conditional write of the key and a bump of
// the global version are refused with INVALID_REQUEST on both stores (there is no next
// version), and change nothing; the store keeps serving its other keys, its listing and
// the key itself, which can still be deleted at its version or overwritten
// unconditionally.
func TestLargestVersion(t *testing.T) {
	const maxVersion = math.MaxInt64
	for _, st := range storesWithSQL {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			store, exec := st.open(t)
			base := serve(t, store, 0)
			c := conformance.Bindings(conformance.TestUser)[0].New(base)
			ctx := context.Background()
			user, sid := "maxer", "max-store"
			put := func(req *vssv1.PutObjectRequest) error {
				req.StoreId = sid
				_, err := c.PutObjects(ctx, user, req)
				return err
			}
			if err := put(&vssv1.PutObjectRequest{GlobalVersion: i64(0), TransactionItems: []*vssv1.KeyValue{
				kvOf("max", 0, "m"), kvOf("max2", 0, "m2"), kvOf("other", 0, "o"),
			}}); err != nil {
				t.Fatal(err)
			}
			exec(`UPDATE vss_db SET version = 9223372036854775807 WHERE user_token = 'maxer' AND key IN ('max', 'max2', 'global_version')`)

			wantFailure(t, "conditional write at the largest version",
				put(&vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{kvOf("max", maxVersion, "next")}}),
				vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, "largest version")
			wantFailure(t, "global version bump at the largest version",
				put(&vssv1.PutObjectRequest{GlobalVersion: i64(maxVersion), TransactionItems: []*vssv1.KeyValue{kvOf("other", 1, "o2")}}),
				vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, "largest version")
			wantFailure(t, "stale conditional write",
				put(&vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{kvOf("max", maxVersion-1, "next")}}),
				vssv1.ErrorCode_CONFLICT_EXCEPTION, "")

			// Other keys and the listing keep working.
			if err := put(&vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{kvOf("other", 1, "o2"), kvOf("new", 0, "n")}}); err != nil {
				t.Fatalf("write of other keys: %v", err)
			}
			get := func(key string) *vssv1.KeyValue {
				t.Helper()
				resp, err := c.GetObject(ctx, user, &vssv1.GetObjectRequest{StoreId: sid, Key: key})
				if err != nil {
					t.Fatalf("get %s: %v", key, err)
				}
				return resp.GetValue()
			}
			if got := get("max"); got.GetVersion() != maxVersion || string(got.GetValue()) != "m" {
				t.Fatalf("max = %v, want version 2^63-1 and its value unchanged", got)
			}
			if got := get("global_version"); got.GetVersion() != maxVersion {
				t.Fatalf("global version = %d, want 2^63-1", got.GetVersion())
			}
			if got := get("other"); got.GetVersion() != 2 {
				t.Fatalf("other = %v, want version 2", got)
			}
			list, err := c.ListKeyVersions(ctx, user, &vssv1.ListKeyVersionsRequest{StoreId: sid})
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			var listed []string
			for _, k := range list.GetKeyVersions() {
				listed = append(listed, k.GetKey()+":"+strconvI(k.GetVersion()))
			}
			wantList(t, listed, "new:1", "other:2", "max2:9223372036854775807", "max:9223372036854775807")
			if list.GetGlobalVersion() != maxVersion {
				t.Fatalf("listed global version = %d, want 2^63-1", list.GetGlobalVersion())
			}

			// The key can leave the largest version: deleted at it, or overwritten.
			if err := put(&vssv1.PutObjectRequest{DeleteItems: []*vssv1.KeyValue{kvOf("max2", maxVersion, "")}}); err != nil {
				t.Fatalf("delete at the largest version: %v", err)
			}
			if err := put(&vssv1.PutObjectRequest{GlobalVersion: i64(-1), TransactionItems: []*vssv1.KeyValue{kvOf("max", -1, "again")}}); err != nil {
				t.Fatalf("unconditional write at the largest version: %v", err)
			}
			if got := get("max"); got.GetVersion() != 1 || string(got.GetValue()) != "again" {
				t.Fatalf("max after an unconditional write = %v, want version 1", got)
			}
			if got := get("global_version"); got.GetVersion() != 1 {
				t.Fatalf("global version after an unconditional write = %d, want 1", got.GetVersion())
			}
		})
	}
}

func kvOf(key string, version int64, value string) *vssv1.KeyValue {
	return &vssv1.KeyValue{Key: key, Version: version, Value: []byte(value)}
}

func strconvI(v int64) string { return strconv.FormatInt(v, 10) }

func str(s string) *string { return &s }

func wantList(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("listing = %v, want %v", got, want)
	}
}
