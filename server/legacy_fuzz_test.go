package server_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/server"
)

// post sends body to path of h and returns the recorded answer.
func post(h http.Handler, path, contentType string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	h.ServeHTTP(rec, req)
	return rec
}

// legacyCall sends req to operation op of the VSS HTTP API and decodes a successful
// answer into resp; it returns the status and fails t on a malformed answer or a server
// error.
func legacyCall(t *testing.T, h http.Handler, op string, req, resp proto.Message) int {
	t.Helper()
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return legacyRaw(t, h, op, body, resp)
}

func legacyRaw(t *testing.T, h http.Handler, op string, body []byte, resp proto.Message) int {
	t.Helper()
	rec := post(h, "/vss/"+op, "application/octet-stream", body)
	if rec.Header().Get("vss-protocol-version") != "0" {
		t.Fatalf("%s: status %d without the protocol header", op, rec.Code)
	}
	if rec.Code == http.StatusOK {
		if err := proto.Unmarshal(rec.Body.Bytes(), resp); err != nil {
			t.Fatalf("%s: undecodable success: %v", op, err)
		}
		return rec.Code
	}
	var e vssv1.ErrorResponse
	if err := proto.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.GetMessage() == "" {
		t.Fatalf("%s: status %d without an ErrorResponse: %v", op, rec.Code, err)
	}
	want := map[vssv1.ErrorCode]int{
		vssv1.ErrorCode_CONFLICT_EXCEPTION:        http.StatusConflict,
		vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION: http.StatusBadRequest,
		vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION:     http.StatusNotFound,
	}[e.GetErrorCode()]
	if rec.Code != want {
		t.Fatalf("%s %x: status %d with %s: %s", op, body, rec.Code, e.GetErrorCode(), e.GetMessage())
	}
	return rec.Code
}

// stored reads key of store through the VSS HTTP API; nil means missing.
func stored(t *testing.T, h http.Handler, store, key string) *vssv1.KeyValue {
	t.Helper()
	var resp vssv1.GetObjectResponse
	switch code := legacyCall(t, h, "getObject", &vssv1.GetObjectRequest{StoreId: store, Key: key}, &resp); code {
	case http.StatusOK:
		if resp.GetValue().GetKey() != key {
			t.Fatalf("getObject %q answered key %q", key, resp.GetValue().GetKey())
		}
		return resp.GetValue()
	case http.StatusNotFound:
		return nil
	default:
		t.Fatalf("getObject %q of a key that was just written or deleted: status %d", key, code)
		return nil
	}
}

// checkPutApplied checks that an acknowledged put left every item it wrote with its
// value and the version the contract gives it, and removed every item it deleted.
func checkPutApplied(t *testing.T, h http.Handler, req *vssv1.PutObjectRequest) {
	t.Helper()
	for _, it := range req.GetTransactionItems() {
		got := stored(t, h, req.GetStoreId(), it.GetKey())
		want := it.GetVersion() + 1
		if it.GetVersion() == -1 {
			want = 1
		}
		if got == nil || got.GetVersion() != want || !bytes.Equal(got.GetValue(), it.GetValue()) {
			t.Fatalf("acknowledged put of %q at version %d reads back as %v", it.GetKey(), it.GetVersion(), got)
		}
	}
	for _, it := range req.GetDeleteItems() {
		if got := stored(t, h, req.GetStoreId(), it.GetKey()); got != nil {
			t.Fatalf("acknowledged delete item %q still reads %v", it.GetKey(), got)
		}
	}
}

// putSeeds are PutObjects requests for the seed corpora.
func putSeeds() []*vssv1.PutObjectRequest {
	return []*vssv1.PutObjectRequest{
		{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1, Value: []byte("v")}}},
		{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 0, Value: []byte("v")}}},
		{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 1, Value: []byte("w")}, {Key: "a", Version: -1}}},
		{StoreId: "s", GlobalVersion: proto.Int64(0), TransactionItems: []*vssv1.KeyValue{{Key: "a", Version: 0, Value: []byte{0, 1}}}},
		{StoreId: "s", DeleteItems: []*vssv1.KeyValue{{Key: "k", Version: -1}}, TransactionItems: []*vssv1.KeyValue{{Key: "b", Version: -1}}},
		{StoreId: "", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1}, {Key: "k", Version: -1}}},
		{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: "global_version", Version: -1}}},
		{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: strings.Repeat("é", server.MaxKeyLength), Version: -1}}},
		{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -2}}},
	}
}

// FuzzVSSHTTPPutObjects posts arbitrary PutObjects bodies: an acknowledged put reads
// back exactly (every written item with its value and version, every deleted item
// gone); a refused one is a conflict or an invalid request, never a server error.
func FuzzVSSHTTPPutObjects(f *testing.F) {
	for _, m := range putSeeds() {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	h := newHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		if legacyRaw(t, h, "putObjects", body, &vssv1.PutObjectResponse{}) != http.StatusOK {
			return
		}
		var req vssv1.PutObjectRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Fatalf("acknowledged a body that does not decode: %v", err)
		}
		checkPutApplied(t, h, &req)
	})
}

// FuzzVSSHTTPDeleteObject posts arbitrary DeleteObject bodies against a store holding
// the key: an acknowledged delete removes the key when its version is -1 or matches and
// changes nothing otherwise.
func FuzzVSSHTTPDeleteObject(f *testing.F) {
	for _, m := range []*vssv1.DeleteObjectRequest{
		{StoreId: "s", KeyValue: &vssv1.KeyValue{Key: "k", Version: -1}},
		{StoreId: "s", KeyValue: &vssv1.KeyValue{Key: "k", Version: 1}},
		{StoreId: "s", KeyValue: &vssv1.KeyValue{Key: "k", Version: 7}},
		{StoreId: "s", KeyValue: &vssv1.KeyValue{Key: "missing", Version: 0}},
		{StoreId: "s", KeyValue: &vssv1.KeyValue{Key: "global_version", Version: -1}},
		{StoreId: "s"},
		{StoreId: strings.Repeat("s", server.MaxStoreIDLength+1), KeyValue: &vssv1.KeyValue{Key: "k", Version: -1}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	h := newHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req vssv1.DeleteObjectRequest
		decoded := proto.Unmarshal(body, &req) == nil
		// Give the key a value to delete, when the request names a writable key.
		if decoded && req.GetKeyValue().GetKey() != "" {
			put := &vssv1.PutObjectRequest{StoreId: req.GetStoreId(), TransactionItems: []*vssv1.KeyValue{{Key: req.GetKeyValue().GetKey(), Version: -1, Value: []byte("x")}}}
			if legacyCall(t, h, "putObjects", put, &vssv1.PutObjectResponse{}) != http.StatusOK {
				decoded = false // the key cannot be stored: the delete must still not fail
			}
		}
		if legacyRaw(t, h, "deleteObject", body, &vssv1.DeleteObjectResponse{}) != http.StatusOK || !decoded {
			return
		}
		got := stored(t, h, req.GetStoreId(), req.GetKeyValue().GetKey())
		if v := req.GetKeyValue().GetVersion(); v == -1 || v == 1 {
			if got != nil {
				t.Fatalf("acknowledged delete of version %d left %v", v, got)
			}
		} else if got == nil || got.GetVersion() != 1 || string(got.GetValue()) != "x" {
			t.Fatalf("delete of version %d (stored: 1) changed the key to %v", v, got)
		}
	})
}

// FuzzVSSHTTPGetObject posts arbitrary GetObject bodies: an answer names the requested
// key, and the global version reads with an empty value.
func FuzzVSSHTTPGetObject(f *testing.F) {
	for _, m := range []*vssv1.GetObjectRequest{
		{StoreId: "s", Key: "k"},
		{StoreId: "s", Key: "global_version"},
		{StoreId: "s", Key: ""},
		{StoreId: "", Key: "k\x00"},
		{StoreId: "s", Key: strings.Repeat("k", server.MaxKeyLength+1)},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	h := newHandler(f)
	put := &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1, Value: []byte("v")}}}
	body, _ := proto.Marshal(put)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/vss/putObjects", bytes.NewReader(body)))
	f.Fuzz(func(t *testing.T, body []byte) {
		var resp vssv1.GetObjectResponse
		code := legacyRaw(t, h, "getObject", body, &resp)
		var req vssv1.GetObjectRequest
		if code == http.StatusBadRequest {
			return
		}
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Fatalf("status %d for a body that does not decode", code)
		}
		switch {
		case code == http.StatusNotFound && req.GetKey() == "global_version":
			t.Fatal("the global version is never missing")
		case code != http.StatusOK:
		case resp.GetValue().GetKey() != req.GetKey():
			t.Fatalf("asked for %q, answered %q", req.GetKey(), resp.GetValue().GetKey())
		case req.GetKey() == "global_version" && len(resp.GetValue().GetValue()) != 0:
			t.Fatalf("the global version has a value: %q", resp.GetValue().GetValue())
		case req.GetKey() == "k" && req.GetStoreId() == "s" && (resp.GetValue().GetVersion() != 1 || string(resp.GetValue().GetValue()) != "v"):
			t.Fatalf("the stored key reads %v", resp.GetValue())
		}
	})
}

// FuzzVSSHTTPListKeyVersions posts arbitrary ListKeyVersions bodies against a store of
// a few keys: an answer holds at most the page size (capped) of distinct keys with the
// prefix, never the reserved global version key, and the global version exactly on the
// first page.
func FuzzVSSHTTPListKeyVersions(f *testing.F) {
	for _, m := range []*vssv1.ListKeyVersionsRequest{
		{StoreId: "s"},
		{StoreId: "s", KeyPrefix: proto.String("a"), PageSize: proto.Int32(2)},
		{StoreId: "s", PageSize: proto.Int32(0)},
		{StoreId: "s", PageSize: proto.Int32(-1)},
		{StoreId: "s", PageToken: proto.String("3")},
		{StoreId: "s", KeyPrefix: proto.String("%"), PageToken: proto.String("x")},
		{StoreId: "s", KeyPrefix: proto.String("glo")},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	h := newHandler(f)
	put := &vssv1.PutObjectRequest{StoreId: "s", GlobalVersion: proto.Int64(0)}
	for _, k := range []string{"a", "ab", "a%", "a_", "b", "global"} {
		put.TransactionItems = append(put.TransactionItems, &vssv1.KeyValue{Key: k, Version: -1})
	}
	body, _ := proto.Marshal(put)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/vss/putObjects", bytes.NewReader(body)))
	f.Fuzz(func(t *testing.T, body []byte) {
		var resp vssv1.ListKeyVersionsResponse
		if legacyRaw(t, h, "listKeyVersions", body, &resp) != http.StatusOK {
			return
		}
		var req vssv1.ListKeyVersionsRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Fatalf("acknowledged a body that does not decode: %v", err)
		}
		limit := server.MaxPageSize
		if req.PageSize != nil && int(req.GetPageSize()) < limit {
			limit = int(req.GetPageSize())
		}
		if len(resp.GetKeyVersions()) > limit {
			t.Fatalf("page size %d: %d keys", limit, len(resp.GetKeyVersions()))
		}
		seen := map[string]bool{}
		for _, kv := range resp.GetKeyVersions() {
			if !strings.HasPrefix(kv.GetKey(), req.GetKeyPrefix()) || kv.GetKey() == "global_version" || seen[kv.GetKey()] || len(kv.GetValue()) > 0 {
				t.Fatalf("prefix %q: listed %v", req.GetKeyPrefix(), kv)
			}
			seen[kv.GetKey()] = true
		}
		if first := req.GetPageToken() == ""; first != (resp.GlobalVersion != nil) {
			t.Fatalf("page token %q: global version %v", req.GetPageToken(), resp.GlobalVersion)
		}
		if req.GetStoreId() == "s" && resp.GlobalVersion != nil && resp.GetGlobalVersion() != 1 {
			t.Fatalf("global version %d, want 1", resp.GetGlobalVersion())
		}
	})
}
