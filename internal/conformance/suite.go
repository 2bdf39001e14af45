package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// Run runs every rule of the VSS contract against the service behind c. Each case uses
// users of its own, so cases run in parallel and the suite can share one server.
func Run(t *testing.T, c Client) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, &env{t: t, c: c, user: newUser(), store: "store-" + newUser()})
		})
	}
}

// env is one case's view: a client, a fresh user and a store id nobody else uses.
type env struct {
	t     *testing.T
	c     Client
	user  string
	store string
}

func newUser() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "user-" + hex.EncodeToString(b[:])
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func kv(key string, version int64, value string) *vssv1.KeyValue {
	return &vssv1.KeyValue{Key: key, Version: version, Value: []byte(value)}
}

func i64(v int64) *int64   { return &v }
func i32(v int32) *int32   { return &v }
func str(v string) *string { return &v }

// put writes items to the env's store and fails the test on error.
func (e *env) put(items ...*vssv1.KeyValue) {
	e.t.Helper()
	if _, err := e.c.PutObjects(ctx(e.t), e.user, &vssv1.PutObjectRequest{StoreId: e.store, TransactionItems: items}); err != nil {
		e.t.Fatalf("PutObjects %v: %v", keys(items), err)
	}
}

// putReq sends a PutObjects and returns its error.
func (e *env) putReq(req *vssv1.PutObjectRequest) error {
	e.t.Helper()
	if req.StoreId == "" {
		req.StoreId = e.store
	}
	_, err := e.c.PutObjects(ctx(e.t), e.user, req)
	return err
}

// get reads key and returns its entry, or the failure.
func (e *env) get(key string) (*vssv1.KeyValue, error) {
	e.t.Helper()
	resp, err := e.c.GetObject(ctx(e.t), e.user, &vssv1.GetObjectRequest{StoreId: e.store, Key: key})
	if err != nil {
		return nil, err
	}
	return resp.GetValue(), nil
}

// want asserts that key holds version and value.
func (e *env) want(key string, version int64, value string) {
	e.t.Helper()
	got, err := e.get(key)
	if err != nil {
		e.t.Fatalf("GetObject(%q): %v", key, err)
	}
	if got.GetKey() != key || got.GetVersion() != version || !bytes.Equal(got.GetValue(), []byte(value)) {
		e.t.Fatalf("GetObject(%q) = {%q v%d %q}, want {%q v%d %q}", key, got.GetKey(), got.GetVersion(), got.GetValue(), key, version, value)
	}
}

// wantMissing asserts that key does not exist.
func (e *env) wantMissing(key string) {
	e.t.Helper()
	_, err := e.get(key)
	wantCode(e.t, err, vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION)
}

// globalVersion reads the store's global version.
func (e *env) globalVersion() int64 {
	e.t.Helper()
	got, err := e.get("global_version")
	if err != nil {
		e.t.Fatalf("GetObject(global_version): %v", err)
	}
	if len(got.GetValue()) != 0 {
		e.t.Fatalf("global_version carries a value: %q", got.GetValue())
	}
	return got.GetVersion()
}

// list returns one page.
func (e *env) list(req *vssv1.ListKeyVersionsRequest) *vssv1.ListKeyVersionsResponse {
	e.t.Helper()
	if req.StoreId == "" {
		req.StoreId = e.store
	}
	resp, err := e.c.ListKeyVersions(ctx(e.t), e.user, req)
	if err != nil {
		e.t.Fatalf("ListKeyVersions: %v", err)
	}
	for _, k := range resp.GetKeyVersions() {
		if len(k.GetValue()) != 0 {
			e.t.Fatalf("ListKeyVersions returned a value for %q", k.GetKey())
		}
	}
	return resp
}

// listAll follows the pages of a listing and returns "key:version" in order.
func (e *env) listAll(prefix *string, pageSize *int32) []string {
	e.t.Helper()
	var out []string
	var token *string
	for pages := 0; ; pages++ {
		if pages > 1000 {
			e.t.Fatal("listing does not end")
		}
		resp := e.list(&vssv1.ListKeyVersionsRequest{KeyPrefix: prefix, PageSize: pageSize, PageToken: token})
		if (token == nil) != (resp.GlobalVersion != nil) {
			e.t.Fatalf("page %d: global_version present = %v, want it on the first page only", pages, resp.GlobalVersion != nil)
		}
		for _, k := range resp.GetKeyVersions() {
			out = append(out, fmt.Sprintf("%s:%d", k.GetKey(), k.GetVersion()))
		}
		if resp.GetNextPageToken() == "" {
			return out
		}
		token = str(resp.GetNextPageToken())
	}
}

func keys(items []*vssv1.KeyValue) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.GetKey()
	}
	return out
}

// wantCode asserts that err is a Failure with the given code.
func wantCode(t *testing.T, err error, code vssv1.ErrorCode) {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("got error %v, want a %s failure", err, code)
	}
	if f.Code != code {
		t.Fatalf("got %s (%q), want %s", f.Code, f.Message, code)
	}
	if f.Message == "" {
		t.Fatalf("%s failure without a message", code)
	}
}

func wantList(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("listing = %v, want %v", got, want)
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, e *env)
}

var cases = []testCase{
	{"GetMissingKey", func(t *testing.T, e *env) {
		e.wantMissing("nope")
	}},
	{"CreateWithVersionZero", func(t *testing.T, e *env) {
		e.put(kv("k", 0, "one"))
		e.want("k", 1, "one")
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{kv("k", 0, "two")}}), vssv1.ErrorCode_CONFLICT_EXCEPTION)
		e.want("k", 1, "one")
	}},
	{"ConditionalUpdate", func(t *testing.T, e *env) {
		e.put(kv("k", 0, "v1"))
		e.put(kv("k", 1, "v2"))
		e.want("k", 2, "v2")
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{kv("k", 1, "stale")}}), vssv1.ErrorCode_CONFLICT_EXCEPTION)
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{kv("k", 3, "future")}}), vssv1.ErrorCode_CONFLICT_EXCEPTION)
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{kv("missing", 1, "x")}}), vssv1.ErrorCode_CONFLICT_EXCEPTION)
		e.want("k", 2, "v2")
		e.wantMissing("missing")
		e.put(kv("k", 2, "v3"))
		e.want("k", 3, "v3")
	}},
	{"UnconditionalWrite", func(t *testing.T, e *env) {
		e.put(kv("k", -1, "a"))
		e.want("k", 1, "a")
		e.put(kv("k", 1, "b"))
		e.put(kv("k", 2, "c"))
		e.want("k", 3, "c")
		e.put(kv("k", -1, "d"))
		e.want("k", 1, "d")
		e.put(kv("empty", -1, ""))
		e.want("empty", 1, "")
	}},
	{"GlobalVersion", func(t *testing.T, e *env) {
		if got := e.globalVersion(); got != 0 {
			t.Fatalf("fresh store global version = %d, want 0", got)
		}
		e.put(kv("a", 0, "x")) // absent: neither checked nor bumped
		if got := e.globalVersion(); got != 0 {
			t.Fatalf("global version after a put without one = %d, want 0", got)
		}
		if err := e.putReq(&vssv1.PutObjectRequest{GlobalVersion: i64(0), TransactionItems: []*vssv1.KeyValue{kv("b", 0, "y")}}); err != nil {
			t.Fatal(err)
		}
		if got := e.globalVersion(); got != 1 {
			t.Fatalf("global version = %d, want 1", got)
		}
		// A mismatch fails the whole request.
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{GlobalVersion: i64(0), TransactionItems: []*vssv1.KeyValue{kv("c", 0, "z")}}), vssv1.ErrorCode_CONFLICT_EXCEPTION)
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{GlobalVersion: i64(7), TransactionItems: []*vssv1.KeyValue{kv("c", 0, "z")}}), vssv1.ErrorCode_CONFLICT_EXCEPTION)
		e.wantMissing("c")
		// A request with only the global version bumps it.
		if err := e.putReq(&vssv1.PutObjectRequest{GlobalVersion: i64(1)}); err != nil {
			t.Fatal(err)
		}
		if got := e.globalVersion(); got != 2 {
			t.Fatalf("global version = %d, want 2", got)
		}
		if resp := e.list(&vssv1.ListKeyVersionsRequest{}); resp.GetGlobalVersion() != 2 {
			t.Fatalf("listed global version = %d, want 2", resp.GetGlobalVersion())
		}
		e.put(kv("d", 0, "w"))
		if got := e.globalVersion(); got != 2 {
			t.Fatalf("global version after a put without one = %d, want 2", got)
		}
	}},
	{"GlobalVersionIsPerStore", func(t *testing.T, e *env) {
		if err := e.putReq(&vssv1.PutObjectRequest{GlobalVersion: i64(0)}); err != nil {
			t.Fatal(err)
		}
		other := *e
		other.store = e.store + "-other"
		if got := other.globalVersion(); got != 0 {
			t.Fatalf("other store's global version = %d, want 0", got)
		}
	}},
	{"AtomicPutAndDelete", func(t *testing.T, e *env) {
		e.put(kv("a", 0, "a"), kv("b", 0, "b"))
		if err := e.putReq(&vssv1.PutObjectRequest{
			TransactionItems: []*vssv1.KeyValue{kv("c", 0, "c"), kv("b", 1, "b2")},
			DeleteItems:      []*vssv1.KeyValue{kv("a", 1, "")},
		}); err != nil {
			t.Fatal(err)
		}
		e.wantMissing("a")
		e.want("b", 2, "b2")
		e.want("c", 1, "c")
		// One failing condition anywhere leaves everything as it was.
		for name, req := range map[string]*vssv1.PutObjectRequest{
			"last put fails": {TransactionItems: []*vssv1.KeyValue{kv("d", 0, "d"), kv("b", 2, "b3"), kv("c", 5, "c2")}},
			"delete fails":   {TransactionItems: []*vssv1.KeyValue{kv("d", 0, "d"), kv("b", 2, "b3")}, DeleteItems: []*vssv1.KeyValue{kv("c", 9, "")}},
			"global fails":   {GlobalVersion: i64(3), TransactionItems: []*vssv1.KeyValue{kv("d", 0, "d")}, DeleteItems: []*vssv1.KeyValue{kv("c", 1, "")}},
			"first fails":    {TransactionItems: []*vssv1.KeyValue{kv("b", 0, "dup"), kv("d", -1, "d")}, DeleteItems: []*vssv1.KeyValue{kv("c", 1, "")}},
		} {
			wantCode(t, e.putReq(req), vssv1.ErrorCode_CONFLICT_EXCEPTION)
			e.wantMissing("d")
			e.want("b", 2, "b2")
			e.want("c", 1, "c")
			if got := e.globalVersion(); got != 0 {
				t.Fatalf("%s: global version = %d, want 0", name, got)
			}
		}
	}},
	{"DeleteItems", func(t *testing.T, e *env) {
		e.put(kv("a", 0, "a"), kv("b", 0, "b"))
		e.put(kv("b", 1, "b"))
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{DeleteItems: []*vssv1.KeyValue{kv("missing", -1, "")}}), vssv1.ErrorCode_CONFLICT_EXCEPTION)
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{DeleteItems: []*vssv1.KeyValue{kv("missing", 1, "")}}), vssv1.ErrorCode_CONFLICT_EXCEPTION)
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{DeleteItems: []*vssv1.KeyValue{kv("b", 1, "")}}), vssv1.ErrorCode_CONFLICT_EXCEPTION)
		e.want("b", 2, "b")
		if err := e.putReq(&vssv1.PutObjectRequest{DeleteItems: []*vssv1.KeyValue{kv("a", -1, ""), kv("b", 2, "")}}); err != nil {
			t.Fatal(err)
		}
		e.wantMissing("a")
		e.wantMissing("b")
	}},
	{"DeleteObjectIsIdempotent", func(t *testing.T, e *env) {
		del := func(key string, version int64) {
			t.Helper()
			if _, err := e.c.DeleteObject(ctx(t), e.user, &vssv1.DeleteObjectRequest{StoreId: e.store, KeyValue: kv(key, version, "ignored")}); err != nil {
				t.Fatalf("DeleteObject(%q, %d): %v", key, version, err)
			}
		}
		del("missing", 1)
		del("missing", -1)
		e.put(kv("k", 0, "v"))
		e.put(kv("k", 1, "v"))
		del("k", 1) // mismatch: succeeds, changes nothing
		e.want("k", 2, "v")
		del("k", 2)
		e.wantMissing("k")
		del("k", 2)
		e.put(kv("u", 0, "v"))
		del("u", -1)
		e.wantMissing("u")
		e.put(kv("z", 0, "v")) // version 0 deletes only a key at version 0, which never exists
		del("z", 0)
		e.want("z", 1, "v")
	}},
	{"ReservedGlobalVersionKey", func(t *testing.T, e *env) {
		got, err := e.get("global_version")
		if err != nil {
			t.Fatal(err)
		}
		if got.GetKey() != "global_version" || got.GetVersion() != 0 || len(got.GetValue()) != 0 {
			t.Fatalf("global_version of a fresh store = %v", got)
		}
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{kv("global_version", -1, "x")}}), vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{kv("global_version", 0, "x")}}), vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{DeleteItems: []*vssv1.KeyValue{kv("global_version", -1, "")}}), vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
		_, err = e.c.DeleteObject(ctx(t), e.user, &vssv1.DeleteObjectRequest{StoreId: e.store, KeyValue: kv("global_version", -1, "")})
		wantCode(t, err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
		if err := e.putReq(&vssv1.PutObjectRequest{GlobalVersion: i64(0), TransactionItems: []*vssv1.KeyValue{kv("k", 0, "v")}}); err != nil {
			t.Fatal(err)
		}
		wantList(t, e.listAll(nil, nil), "k:1")
		wantList(t, e.listAll(str("global"), nil))
	}},
	{"ListOrder", func(t *testing.T, e *env) {
		e.put(kv("k1", 0, "1"))
		e.put(kv("k2", 0, "2"))
		e.put(kv("k3", 0, "3"))
		wantList(t, e.listAll(nil, nil), "k3:1", "k2:1", "k1:1")
		e.put(kv("k1", 1, "1b")) // an update keeps its place
		e.put(kv("k2", -1, "2b"))
		wantList(t, e.listAll(nil, nil), "k3:1", "k2:1", "k1:2")
		if _, err := e.c.DeleteObject(ctx(t), e.user, &vssv1.DeleteObjectRequest{StoreId: e.store, KeyValue: kv("k2", -1, "")}); err != nil {
			t.Fatal(err)
		}
		e.put(kv("k2", 0, "2c")) // delete and re-create moves it to the front
		wantList(t, e.listAll(nil, nil), "k2:1", "k3:1", "k1:2")
		e.put(kv("k5", 0, "5"), kv("k4", 0, "4")) // one request: both newer than everything before
		wantList(t, e.listAll(nil, nil), "k4:1", "k5:1", "k2:1", "k3:1", "k1:2")
	}},
	{"ListOrderWithinOneRequest", func(t *testing.T, e *env) {
		// Keys created by one request are listed as if created one by one in request
		// order (as the reference server inserts them), whatever their key order, their
		// versions (0 or -1) or the other items of the request.
		e.put(kv("old", 0, "o"), kv("gone", 0, "g"))
		if err := e.putReq(&vssv1.PutObjectRequest{
			GlobalVersion:    i64(0),
			TransactionItems: []*vssv1.KeyValue{kv("m", 0, "1"), kv("z", -1, "2"), kv("old", 1, "3"), kv("a", 0, "4"), kv("k", -1, "5")},
			DeleteItems:      []*vssv1.KeyValue{kv("gone", 1, "")},
		}); err != nil {
			t.Fatal(err)
		}
		wantList(t, e.listAll(nil, nil), "k:1", "a:1", "z:1", "m:1", "old:2")
		e.put(kv("y", -1, "1"), kv("b", -1, "2"), kv("x", -1, "3")) // only unconditional writes
		wantList(t, e.listAll(nil, nil), "x:1", "b:1", "y:1", "k:1", "a:1", "z:1", "m:1", "old:2")
		wantList(t, e.listAll(nil, i32(3)), "x:1", "b:1", "y:1", "k:1", "a:1", "z:1", "m:1", "old:2")
	}},
	{"Pagination", func(t *testing.T, e *env) {
		const n = 250
		var want []string
		for i := 0; i < n; i += 50 {
			var items []*vssv1.KeyValue
			for j := i; j < i+50; j++ {
				items = append(items, kv(fmt.Sprintf("key-%03d", j), 0, "v"))
			}
			e.put(items...)
		}
		if err := e.putReq(&vssv1.PutObjectRequest{GlobalVersion: i64(0)}); err != nil {
			t.Fatal(err)
		}
		// Pages from a single request share its order; compare as sets, pages as sizes.
		first := e.list(&vssv1.ListKeyVersionsRequest{})
		if len(first.GetKeyVersions()) != 100 || first.GetNextPageToken() == "" || first.GetGlobalVersion() != 1 || first.GlobalVersion == nil {
			t.Fatalf("first page: %d keys, token %q, global version %v", len(first.GetKeyVersions()), first.GetNextPageToken(), first.GlobalVersion)
		}
		second := e.list(&vssv1.ListKeyVersionsRequest{PageToken: first.NextPageToken})
		if len(second.GetKeyVersions()) != 100 || second.GlobalVersion != nil {
			t.Fatalf("second page: %d keys, global version %v", len(second.GetKeyVersions()), second.GlobalVersion)
		}
		third := e.list(&vssv1.ListKeyVersionsRequest{PageToken: second.NextPageToken})
		if len(third.GetKeyVersions()) != 50 || third.GetNextPageToken() != "" {
			t.Fatalf("third page: %d keys, token %q", len(third.GetKeyVersions()), third.GetNextPageToken())
		}
		all := e.listAll(nil, nil)
		seen := map[string]bool{}
		for _, k := range all {
			seen[k] = true
		}
		for i := 0; i < n; i++ {
			want = append(want, fmt.Sprintf("key-%03d:1", i))
			if !seen[want[i]] {
				t.Fatalf("key %s missing from the listing", want[i])
			}
		}
		if len(all) != n {
			t.Fatalf("listed %d keys, want %d", len(all), n)
		}
		for _, size := range []int32{1, 7, 100, 101, 5000} {
			got := e.listAll(nil, i32(size))
			if strings.Join(got, " ") != strings.Join(all, " ") {
				t.Fatalf("page size %d lists %d keys in another order", size, len(got))
			}
		}
		capped := e.list(&vssv1.ListKeyVersionsRequest{PageSize: i32(1000)})
		if len(capped.GetKeyVersions()) != 100 {
			t.Fatalf("page size 1000 returned %d keys, want the cap of 100", len(capped.GetKeyVersions()))
		}
		small := e.list(&vssv1.ListKeyVersionsRequest{PageSize: i32(50)})
		if len(small.GetKeyVersions()) != 50 || small.GetNextPageToken() == "" {
			t.Fatalf("page size 50 returned %d keys", len(small.GetKeyVersions()))
		}
		zero := e.list(&vssv1.ListKeyVersionsRequest{PageSize: i32(0)})
		if len(zero.GetKeyVersions()) != 0 || zero.GlobalVersion == nil || zero.GetGlobalVersion() != 1 {
			t.Fatalf("page size 0: %d keys, global version %v", len(zero.GetKeyVersions()), zero.GlobalVersion)
		}
		// A prefix selects across pages.
		wantList(t, e.listAll(str("key-24"), i32(3)), "key-249:1", "key-248:1", "key-247:1", "key-246:1", "key-245:1", "key-244:1", "key-243:1", "key-242:1", "key-241:1", "key-240:1")
	}},
	{"EmptyStoreListing", func(t *testing.T, e *env) {
		resp := e.list(&vssv1.ListKeyVersionsRequest{})
		if len(resp.GetKeyVersions()) != 0 || resp.GetNextPageToken() != "" || resp.GlobalVersion == nil || resp.GetGlobalVersion() != 0 {
			t.Fatalf("empty store listing = %v", resp)
		}
	}},
	{"InvalidPageTokens", func(t *testing.T, e *env) {
		for _, token := range []string{"abc", "-1", "1.5", " 1", "+1", "0x10", "99999999999999999999", "\u00e9"} {
			_, err := e.c.ListKeyVersions(ctx(t), e.user, &vssv1.ListKeyVersionsRequest{StoreId: e.store, PageToken: str(token)})
			wantCode(t, err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
		}
		_, err := e.c.ListKeyVersions(ctx(t), e.user, &vssv1.ListKeyVersionsRequest{StoreId: e.store, PageSize: i32(-1)})
		wantCode(t, err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
	}},
	{"LiteralPrefix", func(t *testing.T, e *env) {
		for _, k := range []string{"a%b", "a_b", "axb", "a%", "ab", "A%b", "a*b", "a[b", "a\\b", "a?"} {
			e.put(kv(k, 0, k))
		}
		wantList(t, e.listAll(str("a%"), nil), "a%:1", "a%b:1")
		wantList(t, e.listAll(str("a_"), nil), "a_b:1")
		wantList(t, e.listAll(str("a*"), nil), "a*b:1")
		wantList(t, e.listAll(str("a["), nil), "a[b:1")
		wantList(t, e.listAll(str("a\\"), nil), "a\\b:1")
		wantList(t, e.listAll(str("a?"), nil), "a?:1")
		wantList(t, e.listAll(str("A"), nil), "A%b:1")
		wantList(t, e.listAll(str("zzz"), nil))
		if got := e.listAll(str(""), nil); len(got) != 10 {
			t.Fatalf("empty prefix lists %d keys, want 10", len(got))
		}
	}},
	{"EmptyStoreID", func(t *testing.T, e *env) {
		empty := *e
		empty.store = ""
		if _, err := e.c.PutObjects(ctx(t), e.user, &vssv1.PutObjectRequest{StoreId: "", TransactionItems: []*vssv1.KeyValue{kv("k", 0, "in empty")}}); err != nil {
			t.Fatal(err)
		}
		resp, err := e.c.GetObject(ctx(t), e.user, &vssv1.GetObjectRequest{StoreId: "", Key: "k"})
		if err != nil || string(resp.GetValue().GetValue()) != "in empty" {
			t.Fatalf("get from the empty store id: %v %v", resp, err)
		}
		e.wantMissing("k")
		lr, err := e.c.ListKeyVersions(ctx(t), e.user, &vssv1.ListKeyVersionsRequest{StoreId: ""})
		if err != nil || len(lr.GetKeyVersions()) != 1 {
			t.Fatalf("list of the empty store id: %v %v", lr, err)
		}
	}},
	{"IsolationAcrossStoresAndUsers", func(t *testing.T, e *env) {
		e.put(kv("shared", 0, "mine"))
		if err := e.putReq(&vssv1.PutObjectRequest{GlobalVersion: i64(0)}); err != nil {
			t.Fatal(err)
		}
		otherStore := *e
		otherStore.store = e.store + "x"
		otherUser := *e
		otherUser.user = newUser()
		for _, o := range []*env{&otherStore, &otherUser} {
			o.wantMissing("shared")
			wantList(t, o.listAll(nil, nil))
			if got := o.globalVersion(); got != 0 {
				t.Fatalf("global version leaks: %d", got)
			}
			// Creating, overwriting and deleting the same key elsewhere leaves ours alone.
			o.put(kv("shared", 0, "theirs"))
			o.put(kv("shared", -1, "theirs2"))
			if _, err := o.c.DeleteObject(ctx(t), o.user, &vssv1.DeleteObjectRequest{StoreId: o.store, KeyValue: kv("shared", -1, "")}); err != nil {
				t.Fatal(err)
			}
			wantCode(t, o.putReq(&vssv1.PutObjectRequest{StoreId: o.store, DeleteItems: []*vssv1.KeyValue{kv("shared", 1, "")}}), vssv1.ErrorCode_CONFLICT_EXCEPTION)
		}
		e.want("shared", 1, "mine")
		if got := e.globalVersion(); got != 1 {
			t.Fatalf("global version = %d, want 1", got)
		}
	}},
	{"Limits", func(t *testing.T, e *env) {
		long := func(n int, r string) string { return strings.Repeat(r, n) }
		ok := func(store, key string) {
			t.Helper()
			if _, err := e.c.PutObjects(ctx(t), e.user, &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{kv(key, 0, "v")}}); err != nil {
				t.Fatalf("store %d chars, key %d chars: %v", len([]rune(store)), len([]rune(key)), err)
			}
			resp, err := e.c.GetObject(ctx(t), e.user, &vssv1.GetObjectRequest{StoreId: store, Key: key})
			if err != nil || resp.GetValue().GetKey() != key {
				t.Fatalf("reading back a long key: %v", err)
			}
		}
		bad := func(store, key string) {
			t.Helper()
			_, err := e.c.PutObjects(ctx(t), e.user, &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{kv(key, 0, "v")}})
			wantCode(t, err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
			_, err = e.c.GetObject(ctx(t), e.user, &vssv1.GetObjectRequest{StoreId: store, Key: key})
			wantCode(t, err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
			_, err = e.c.DeleteObject(ctx(t), e.user, &vssv1.DeleteObjectRequest{StoreId: store, KeyValue: kv(key, -1, "")})
			wantCode(t, err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
		}
		ok(long(120, "s"), "k")
		ok(long(120, "é"), long(600, "ü")) // limits count characters, not bytes
		ok(e.store, long(600, "k"))
		bad(long(121, "s"), "k")
		bad(e.store, long(601, "k"))
		bad(e.store, long(601, "ü"))
		bad(e.store, "")
		bad(e.store, "nul\x00key")
		bad("nul\x00store", "k")
		_, err := e.c.ListKeyVersions(ctx(t), e.user, &vssv1.ListKeyVersionsRequest{StoreId: long(121, "s")})
		wantCode(t, err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
		_, err = e.c.ListKeyVersions(ctx(t), e.user, &vssv1.ListKeyVersionsRequest{StoreId: e.store, KeyPrefix: str(long(601, "p"))})
		wantCode(t, err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
	}},
	{"ItemCountLimit", func(t *testing.T, e *env) {
		items := func(n int, prefix string) []*vssv1.KeyValue {
			out := make([]*vssv1.KeyValue, n)
			for i := range out {
				out[i] = kv(fmt.Sprintf("%s%d", prefix, i), 0, "v")
			}
			return out
		}
		if err := e.putReq(&vssv1.PutObjectRequest{TransactionItems: items(1000, "k")}); err != nil {
			t.Fatalf("1000 items: %v", err)
		}
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{TransactionItems: items(1001, "x")}), vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
		wantCode(t, e.putReq(&vssv1.PutObjectRequest{TransactionItems: items(600, "y"), DeleteItems: items(401, "k")}), vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
		e.wantMissing("x0")
		e.wantMissing("y0")
		if got := len(e.listAll(nil, nil)); got != 1000 {
			t.Fatalf("listed %d keys, want 1000", got)
		}
	}},
	{"MalformedRequests", func(t *testing.T, e *env) {
		for name, req := range map[string]*vssv1.PutObjectRequest{
			"duplicate put keys":          {TransactionItems: []*vssv1.KeyValue{kv("k", 0, "a"), kv("k", -1, "b")}},
			"duplicate delete keys":       {DeleteItems: []*vssv1.KeyValue{kv("k", -1, ""), kv("k", -1, "")}},
			"key both put and deleted":    {TransactionItems: []*vssv1.KeyValue{kv("k", 0, "a")}, DeleteItems: []*vssv1.KeyValue{kv("k", -1, "")}},
			"version below -1":            {TransactionItems: []*vssv1.KeyValue{kv("k", -2, "a")}},
			"delete version below -1":     {DeleteItems: []*vssv1.KeyValue{kv("k", -5, "")}},
			"global version below -1":     {GlobalVersion: i64(-2)},
			"empty key":                   {TransactionItems: []*vssv1.KeyValue{kv("", 0, "a")}},
			"empty key among valid items": {TransactionItems: []*vssv1.KeyValue{kv("a", 0, "a"), kv("", 0, "a")}},
		} {
			err := e.putReq(req)
			var f *Failure
			if !errors.As(err, &f) || f.Code != vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION {
				t.Fatalf("%s: got %v, want INVALID_REQUEST", name, err)
			}
		}
		e.wantMissing("a")
		e.wantMissing("k")
		_, err := e.c.DeleteObject(ctx(t), e.user, &vssv1.DeleteObjectRequest{StoreId: e.store})
		wantCode(t, err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
		_, err = e.c.DeleteObject(ctx(t), e.user, &vssv1.DeleteObjectRequest{StoreId: e.store, KeyValue: kv("k", -2, "")})
		wantCode(t, err, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
	}},
	{"EmptyPutIsANoOp", func(t *testing.T, e *env) {
		if err := e.putReq(&vssv1.PutObjectRequest{}); err != nil {
			t.Fatal(err)
		}
		if got := e.globalVersion(); got != 0 {
			t.Fatalf("global version = %d", got)
		}
	}},
	{"LargeValue", func(t *testing.T, e *env) {
		big := make([]byte, 5<<20) // "several MiB", like a channel manager
		_, _ = rand.Read(big)
		e.put(&vssv1.KeyValue{Key: "big", Version: 0, Value: big})
		got, err := e.get("big")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.GetValue(), big) || got.GetVersion() != 1 {
			t.Fatalf("5 MiB value came back with %d bytes, version %d", len(got.GetValue()), got.GetVersion())
		}
	}},
	{"BinaryValuesAndUnicodeKeys", func(t *testing.T, e *env) {
		value := string([]byte{0, 1, 2, 0xff, 0xfe, 0})
		for _, k := range []string{"⚡ channel/monitor", "key with spaces", "emoji-🙂", "slashes/and\\back"} {
			e.put(kv(k, 0, value))
			e.want(k, 1, value)
		}
	}},
	{"Unauthenticated", func(t *testing.T, e *env) {
		_, err := e.c.GetObject(ctx(t), "", &vssv1.GetObjectRequest{StoreId: e.store, Key: "k"})
		wantCode(t, err, vssv1.ErrorCode_AUTH_EXCEPTION)
		_, err = e.c.PutObjects(ctx(t), "", &vssv1.PutObjectRequest{StoreId: e.store, TransactionItems: []*vssv1.KeyValue{kv("k", 0, "v")}})
		wantCode(t, err, vssv1.ErrorCode_AUTH_EXCEPTION)
		e.wantMissing("k")
	}},
	{"ConditionalWriteRace", func(t *testing.T, e *env) {
		RunRace(t, e.c, e.user, e.store, 16, 8)
	}},
}

// RunRace has workers goroutines repeatedly read key "contended" and write it back
// conditionally on the version they read, rounds times each. Every version must be won
// by exactly one writer, and the final version must equal the number of wins.
func RunRace(t *testing.T, c Client, user, store string, workers, rounds int) {
	t.Helper()
	if _, err := c.PutObjects(ctx(t), user, &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{kv("contended", 0, "start")}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	winners := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				resp, err := c.GetObject(ctx(t), user, &vssv1.GetObjectRequest{StoreId: store, Key: "contended"})
				if err != nil {
					errs <- err
					return
				}
				v := resp.GetValue().GetVersion()
				me := fmt.Sprintf("w%d-r%d", w, r)
				_, err = c.PutObjects(ctx(t), user, &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{kv("contended", v, me)}})
				var f *Failure
				switch {
				case err == nil:
					mu.Lock()
					if prev, dup := winners[v]; dup {
						errs <- fmt.Errorf("version %d won twice: by %s and %s", v, prev, me)
					}
					winners[v] = me
					mu.Unlock()
				case errors.As(err, &f) && f.Code == vssv1.ErrorCode_CONFLICT_EXCEPTION:
				default:
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	resp, err := c.GetObject(ctx(t), user, &vssv1.GetObjectRequest{StoreId: store, Key: "contended"})
	if err != nil {
		t.Fatal(err)
	}
	final := resp.GetValue().GetVersion()
	if int64(len(winners)) != final-1 {
		t.Fatalf("final version %d after %d successful writes, want %d", final, len(winners), len(winners)+1)
	}
	for v := int64(1); v < final; v++ {
		if _, ok := winners[v]; !ok {
			t.Fatalf("version %d was never won", v)
		}
	}
	if got := string(resp.GetValue().GetValue()); got != winners[final-1] {
		t.Fatalf("final value %q, want the last winner's %q", got, winners[final-1])
	}
}

// RunCrossBinding checks that every binding serves the same data: a key written through
// one binding is read, listed, updated and deleted through the others, and a race of
// writers spread over all bindings still lets each version be won exactly once.
func RunCrossBinding(t *testing.T, baseURL string) {
	bindings := Bindings(TestUser)
	user, store := newUser(), "cross-"+newUser()
	for i, b := range bindings {
		c := b.New(baseURL)
		key := "from-" + b.Name
		if _, err := c.PutObjects(ctx(t), user, &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{kv(key, 0, b.Name)}}); err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		next := bindings[(i+1)%len(bindings)]
		e := &env{t: t, c: next.New(baseURL), user: user, store: store}
		e.want(key, 1, b.Name)
		e.put(kv(key, 1, next.Name))
		e.want(key, 2, next.Name)
	}
	e := &env{t: t, c: bindings[0].New(baseURL), user: user, store: store}
	if got := len(e.listAll(nil, nil)); got != len(bindings) {
		t.Fatalf("listed %d keys, want %d", got, len(bindings))
	}
	RunRace(t, &roundRobin{clients: func() []Client {
		var cs []Client
		for _, b := range bindings {
			cs = append(cs, b.New(baseURL))
		}
		return cs
	}()}, user, store, 20, 5)
}

// roundRobin spreads calls over several clients.
type roundRobin struct {
	mu      sync.Mutex
	next    int
	clients []Client
}

func (r *roundRobin) pick() Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	return r.clients[r.next%len(r.clients)]
}

func (r *roundRobin) GetObject(ctx context.Context, user string, req *vssv1.GetObjectRequest) (*vssv1.GetObjectResponse, error) {
	return r.pick().GetObject(ctx, user, req)
}

func (r *roundRobin) PutObjects(ctx context.Context, user string, req *vssv1.PutObjectRequest) (*vssv1.PutObjectResponse, error) {
	return r.pick().PutObjects(ctx, user, req)
}

func (r *roundRobin) DeleteObject(ctx context.Context, user string, req *vssv1.DeleteObjectRequest) (*vssv1.DeleteObjectResponse, error) {
	return r.pick().DeleteObject(ctx, user, req)
}

func (r *roundRobin) ListKeyVersions(ctx context.Context, user string, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error) {
	return r.pick().ListKeyVersions(ctx, user, req)
}
