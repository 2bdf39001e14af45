package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/server"
	"github.com/govss/vss/storage/sqlite"
)

func newHandler(t testing.TB) http.Handler {
	t.Helper()
	store, err := sqlite.OpenMemory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h, err := server.New(server.Options{Store: store, Authorizer: server.NoAuth(), MaxBodyBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// FuzzVSSHTTPRequest posts arbitrary bodies to every operation of the existing VSS HTTP
// API: whatever the bytes, the answer is a success or a client error carrying an
// ErrorResponse and the protocol header, never a server error.
func FuzzVSSHTTPRequest(f *testing.F) {
	seeds := []proto.Message{
		&vssv1.GetObjectRequest{StoreId: "s", Key: "k"},
		&vssv1.GetObjectRequest{Key: "global_version"},
		&vssv1.PutObjectRequest{StoreId: "s", GlobalVersion: proto.Int64(0), TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 0, Value: []byte("v")}}},
		&vssv1.PutObjectRequest{StoreId: "s", DeleteItems: []*vssv1.KeyValue{{Key: "k", Version: -1}}},
		&vssv1.DeleteObjectRequest{StoreId: "s", KeyValue: &vssv1.KeyValue{Key: "k", Version: 3}},
		&vssv1.ListKeyVersionsRequest{StoreId: "s", KeyPrefix: proto.String("a%"), PageSize: proto.Int32(0), PageToken: proto.String("12")},
	}
	ops := []string{"getObject", "putObjects", "deleteObject", "listKeyVersions"}
	for i, m := range seeds {
		b, _ := proto.Marshal(m)
		for op := range ops {
			f.Add(uint8(op), b)
		}
		f.Add(uint8(i), []byte{0xff, 0x01})
	}
	h := newHandler(f)
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		path := "/vss/" + ops[int(op)%len(ops)]
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		if rec.Header().Get("vss-protocol-version") != "0" {
			t.Fatalf("%s: no protocol header", path)
		}
		switch code := rec.Code; {
		case code == http.StatusOK:
		case code >= 400 && code < 500:
			var e vssv1.ErrorResponse
			if err := proto.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.GetMessage() == "" {
				t.Fatalf("%s: status %d without an ErrorResponse: %v", path, code, err)
			}
		default:
			t.Fatalf("%s %x: status %d: %s", path, body, code, rec.Body.Bytes())
		}
	})
}

// FuzzPageToken lists with arbitrary page tokens: a token is either one this server could
// have issued (a non-negative decimal sort order) or INVALID_REQUEST, never a failure.
func FuzzPageToken(f *testing.F) {
	for _, s := range []string{"", "0", "1", "42", "-1", "01", "+1", "1e3", "9223372036854775807", "9223372036854775808", "abc", " 1"} {
		f.Add(s)
	}
	h := newHandler(f)
	f.Fuzz(func(t *testing.T, token string) {
		body, err := proto.Marshal(&vssv1.ListKeyVersionsRequest{StoreId: "s", PageToken: proto.String(token)})
		if err != nil {
			return // not valid UTF-8: the protobuf encoder refuses it, so no client can send it
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/vss/listKeyVersions", bytes.NewReader(body)))
		n, perr := strconv.ParseInt(token, 10, 64)
		canonical := perr == nil && n >= 0 && strconv.FormatInt(n, 10) == token
		switch {
		case token == "" || canonical:
			if rec.Code != http.StatusOK {
				t.Fatalf("token %q: status %d", token, rec.Code)
			}
		case rec.Code != http.StatusBadRequest:
			t.Fatalf("token %q: status %d, want 400", token, rec.Code)
		}
	})
}
