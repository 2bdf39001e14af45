package vssclient_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/vsstest"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/conformance"
)

func newKey(t *testing.T) *secp256k1.PrivateKey {
	t.Helper()
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func kv(key string, version int64, value string) *vssv1.KeyValue {
	return &vssv1.KeyValue{Key: key, Version: version, Value: []byte(value)}
}

func put(t *testing.T, c *vssclient.Client, store string, items ...*vssv1.KeyValue) {
	t.Helper()
	if _, err := c.PutObjects(testCtx(t), &vssv1.PutObjectRequest{StoreId: store, TransactionItems: items}); err != nil {
		t.Fatalf("put %v: %v", items, err)
	}
}

func h2c() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// protocols are the ways the client can speak to the server.
var protocols = []struct {
	name string
	opts []vssclient.Option
}{
	{"connect-proto", nil},
	{"connect-json", []vssclient.Option{vssclient.WithConnectOptions(connect.WithProtoJSON())}},
	{"grpc", []vssclient.Option{vssclient.WithHTTPClient(h2c()), vssclient.WithConnectOptions(connect.WithGRPC())}},
	{"grpc-web", []vssclient.Option{vssclient.WithConnectOptions(connect.WithGRPCWeb())}},
}

// TestConformance runs the whole VSS contract through the client, with a signature key
// per test user: the client must carry every request and every error faithfully. It
// runs over Connect and gRPC (TestRoundTrip covers the other protocols).
func TestConformance(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	for _, p := range protocols {
		if p.name != "connect-proto" && p.name != "grpc" {
			continue
		}
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			conformance.Run(t, &suiteClient{url: srv.URL, opts: p.opts})
		})
	}
}

// suiteClient adapts the client to the conformance suite: each user is a signature key
// derived from its name, and errors become conformance failures by ErrorCode.
type suiteClient struct {
	url     string
	opts    []vssclient.Option
	clients sync.Map // user -> *vssclient.Client
}

func (s *suiteClient) client(user string) *vssclient.Client {
	if c, ok := s.clients.Load(user); ok {
		return c.(*vssclient.Client)
	}
	opts := append([]vssclient.Option{vssclient.WithRetry(vssclient.RetryPolicy{MaxAttempts: 1})}, s.opts...)
	if user != "" {
		seed := sha256.Sum256([]byte(user))
		opts = append(opts, vssclient.WithHeaders(vssclient.Signature(secp256k1.PrivKeyFromBytes(seed[:]))))
	}
	c, _ := s.clients.LoadOrStore(user, vssclient.New(s.url, opts...))
	return c.(*vssclient.Client)
}

func failure[T any](resp *T, err error) (*T, error) {
	if err != nil {
		return nil, &conformance.Failure{Code: vssclient.ErrorCode(err), Message: err.Error()}
	}
	return resp, nil
}

func (s *suiteClient) GetObject(ctx context.Context, user string, req *vssv1.GetObjectRequest) (*vssv1.GetObjectResponse, error) {
	return failure(s.client(user).GetObject(ctx, req))
}

func (s *suiteClient) PutObjects(ctx context.Context, user string, req *vssv1.PutObjectRequest) (*vssv1.PutObjectResponse, error) {
	return failure(s.client(user).PutObjects(ctx, req))
}

func (s *suiteClient) DeleteObject(ctx context.Context, user string, req *vssv1.DeleteObjectRequest) (*vssv1.DeleteObjectResponse, error) {
	return failure(s.client(user).DeleteObject(ctx, req))
}

func (s *suiteClient) ListKeyVersions(ctx context.Context, user string, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error) {
	return failure(s.client(user).ListKeyVersions(ctx, req))
}

// TestRoundTrip writes, reads, lists and deletes through each protocol with signature
// authentication.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			c := vssclient.New(srv.URL, append(p.opts, vssclient.WithHeaders(vssclient.Signature(newKey(t))))...)
			gv := int64(0)
			_, err := c.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "s", GlobalVersion: &gv,
				TransactionItems: []*vssv1.KeyValue{kv("a", 0, "alpha"), kv("b", 0, "")}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "s", Key: "a"})
			if err != nil || got.GetValue().GetKey() != "a" || got.GetValue().GetVersion() != 1 || string(got.GetValue().GetValue()) != "alpha" {
				t.Fatalf("GetObject(a) = %v, %v", got, err)
			}
			got, err = c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "s", Key: "global_version"})
			if err != nil || got.GetValue().GetVersion() != 1 {
				t.Fatalf("GetObject(global_version) = %v, %v", got, err)
			}
			list, err := c.ListKeyVersions(ctx, &vssv1.ListKeyVersionsRequest{StoreId: "s"})
			if err != nil || len(list.GetKeyVersions()) != 2 || list.GetKeyVersions()[0].GetKey() != "b" || list.GetGlobalVersion() != 1 {
				t.Fatalf("ListKeyVersions = %v, %v", list, err)
			}
			if _, err := c.DeleteObject(ctx, &vssv1.DeleteObjectRequest{StoreId: "s", KeyValue: kv("a", 1, "")}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "s", Key: "a"}); !vssclient.IsNotFound(err) {
				t.Fatalf("GetObject after delete: %v, want not found", err)
			}
			// Service is the same client, for callers that want response headers.
			resp, err := c.Service().GetObject(ctx, connect.NewRequest(&vssv1.GetObjectRequest{StoreId: "s", Key: "b"}))
			if err != nil || resp.Msg.GetValue().GetVersion() != 1 {
				t.Fatalf("Service().GetObject = %v, %v", resp, err)
			}
		})
	}
}

// TestListAll pages through more keys than one page holds, with and without a page
// size and a prefix, and from a page token on.
func TestListAll(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := vsstest.Start(t, vsstest.Config{})
	c := vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(newKey(t))))
	const n = 230 // the server's largest page is 100
	var want []string
	for batch := 0; batch < n; batch += 50 {
		var items []*vssv1.KeyValue
		for i := batch; i < batch+50 && i < n; i++ {
			key := fmt.Sprintf("key-%03d", i)
			if i%10 == 0 {
				key = fmt.Sprintf("other-%03d", i)
			}
			items = append(items, kv(key, 0, "v"))
		}
		put(t, c, "s", items...)
	}
	for i := n - 1; i >= 0; i-- {
		if i%10 != 0 {
			want = append(want, fmt.Sprintf("key-%03d", i))
		}
	}
	gv := int64(0)
	if _, err := c.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "s", GlobalVersion: &gv}); err != nil {
		t.Fatal(err)
	}
	keys := func(items []*vssv1.KeyValue) []string {
		var out []string
		for _, kv := range items {
			out = append(out, kv.GetKey())
		}
		return out
	}
	prefix := "key-"
	for _, size := range []int32{0, 3, 100, 500} {
		req := &vssv1.ListKeyVersionsRequest{StoreId: "s", KeyPrefix: &prefix}
		if size > 0 {
			req.PageSize = &size
		}
		all, err := c.ListAll(ctx, req)
		if err != nil {
			t.Fatalf("page size %d: %v", size, err)
		}
		if got := keys(all.GetKeyVersions()); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("page size %d: %d keys %v..., want %d", size, len(got), got[:min(len(got), 5)], len(want))
		}
		if all.GlobalVersion == nil || all.GetGlobalVersion() != 1 || all.GetNextPageToken() != "" {
			t.Fatalf("page size %d: global version %v, next page token %q", size, all.GlobalVersion, all.GetNextPageToken())
		}
	}
	// From a page token on: the rest of the keys, without the global version.
	size := int32(10)
	first, err := c.ListKeyVersions(ctx, &vssv1.ListKeyVersionsRequest{StoreId: "s", KeyPrefix: &prefix, PageSize: &size})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, %v", first, err)
	}
	rest, err := c.ListAll(ctx, &vssv1.ListKeyVersionsRequest{StoreId: "s", KeyPrefix: &prefix, PageToken: first.NextPageToken})
	if err != nil {
		t.Fatal(err)
	}
	if got := append(keys(first.GetKeyVersions()), keys(rest.GetKeyVersions())...); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("first page and the rest: %d keys, want %d", len(got), len(want))
	}
	if rest.GlobalVersion != nil {
		t.Fatalf("a listing from a page token carries the global version %d", rest.GetGlobalVersion())
	}
	// An empty store lists nothing, with global version 0.
	all, err := c.ListAll(ctx, &vssv1.ListKeyVersionsRequest{StoreId: "empty"})
	if err != nil || len(all.GetKeyVersions()) != 0 || all.GlobalVersion == nil || all.GetGlobalVersion() != 0 {
		t.Fatalf("empty store: %v, %v", all, err)
	}
}

// TestErrors checks the error helpers against the real server's answers.
func TestErrors(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := vsstest.Start(t, vsstest.Config{})
	c := vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(newKey(t))))
	put(t, c, "s", kv("k", 0, "v"))

	_, conflict := c.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{kv("k", 0, "again")}})
	_, notFound := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "s", Key: "missing"})
	_, invalid := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: strings.Repeat("s", 121), Key: "k"})
	_, unauthenticated := vssclient.New(srv.URL).GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
	_, badToken := vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Bearer("not-a-jwt"))).GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
	canceledCtx, cancel := context.WithCancel(ctx)
	cancel()
	_, canceled := c.GetObject(canceledCtx, &vssv1.GetObjectRequest{StoreId: "s", Key: "k"})

	type predicates struct{ conflict, notFound, invalid, unauthenticated bool }
	for _, tc := range []struct {
		name string
		err  error
		want predicates
		code vssv1.ErrorCode
	}{
		{"conflict", conflict, predicates{conflict: true}, vssv1.ErrorCode_CONFLICT_EXCEPTION},
		{"not found", notFound, predicates{notFound: true}, vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION},
		{"invalid", invalid, predicates{invalid: true}, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION},
		{"no credentials", unauthenticated, predicates{unauthenticated: true}, vssv1.ErrorCode_AUTH_EXCEPTION},
		{"bad token", badToken, predicates{unauthenticated: true}, vssv1.ErrorCode_AUTH_EXCEPTION},
		{"canceled", canceled, predicates{}, vssv1.ErrorCode_UNKNOWN},
		{"nil", nil, predicates{}, vssv1.ErrorCode_UNKNOWN},
		{"not a Connect error", errors.New("boom"), predicates{}, vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION},
		{"unavailable", connect.NewError(connect.CodeUnavailable, errors.New("down")), predicates{}, vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION},
	} {
		got := predicates{vssclient.IsConflict(tc.err), vssclient.IsNotFound(tc.err), vssclient.IsInvalid(tc.err), vssclient.IsUnauthenticated(tc.err)}
		if got != tc.want {
			t.Errorf("%s (%v): predicates %+v, want %+v", tc.name, tc.err, got, tc.want)
		}
		if code := vssclient.ErrorCode(tc.err); code != tc.code {
			t.Errorf("%s (%v): ErrorCode = %v, want %v", tc.name, tc.err, code, tc.code)
		}
	}
	if tc := canceled; !errors.Is(tc, context.Canceled) {
		t.Errorf("canceled call: %v, want context.Canceled", tc)
	}
}
