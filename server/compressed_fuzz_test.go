package server_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// FuzzConnectCompressed posts compressed requests to vss.v1.VssService and to the gRPC
// health service: the fuzzer's bytes are either the gzip stream itself or a message that
// is gzipped after being repeated up to 4096 times or 4 MiB (a small bomb), sent with the Connect
// protocol (Content-Encoding) or as a compressed gRPC-Web envelope. Every answer is a
// success or a client error of the protocol (never internal or unknown), and no error
// message is longer than 1 KiB, however large the input.
func FuzzConnectCompressed(f *testing.F) {
	put, _ := proto.Marshal(&vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1, Value: []byte("v")}}})
	get, _ := proto.Marshal(&vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
	for _, mode := range []uint8{0, 1, 2, 3} {
		f.Add(uint8(1), mode, uint16(1), gzipped(put))
		f.Add(uint8(0), mode, uint16(1), gzipped(get))
		f.Add(uint8(2), mode, uint16(4096), make([]byte, 512))
		f.Add(uint8(1), mode, uint16(4096), put)
		f.Add(uint8(0), mode, uint16(1), []byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff})
		f.Add(uint8(3), mode, uint16(100), []byte(`{"storeId":"`+strings.Repeat("x", 300)+`"}`))
	}
	paths := []string{"/vss.v1.VssService/GetObject", "/vss.v1.VssService/PutObjects", "/grpc.health.v1.Health/Check", "/vss.v1.VssService/ListKeyVersions"}
	h := newHandler(f)
	f.Fuzz(func(t *testing.T, op, mode uint8, repeat uint16, data []byte) {
		path := paths[int(op)%len(paths)]
		payload := data
		if mode&1 == 1 { // data is the message: compress it, repeated up to 4 MiB (the limit is 1 MiB)
			n := int(repeat%4096) + 1
			if len(data) > 0 {
				n = min(n, (4<<20)/len(data)+1)
			}
			payload = gzipped(bytes.Repeat(data, n))
		}
		rec := httptest.NewRecorder()
		var req *http.Request
		if mode&2 == 0 {
			req = httptest.NewRequest(http.MethodPost, path, bytes.NewReader(payload))
			req.Header.Set("Content-Type", "application/proto")
			req.Header.Set("Content-Encoding", "gzip")
		} else {
			env := make([]byte, 5, 5+len(payload))
			env[0] = 1
			binary.BigEndian.PutUint32(env[1:], uint32(len(payload)))
			req = httptest.NewRequest(http.MethodPost, path, bytes.NewReader(append(env, payload...)))
			req.Header.Set("Content-Type", "application/grpc-web+proto")
			req.Header.Set("Grpc-Encoding", "gzip")
		}
		h.ServeHTTP(rec, req)
		if rec.Header().Get("Vss-Protocol-Version") != "0" {
			t.Fatalf("%s: answer without the protocol header", path)
		}
		if mode&2 == 0 {
			if rec.Code == http.StatusOK {
				return
			}
			var e struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("%s: status %d with a body that is not a Connect error: %q", path, rec.Code, rec.Body.Bytes())
			}
			checkFuzzedError(t, path, e.Code, e.Message)
			return
		}
		status := rec.Header().Get("Grpc-Status")
		body := rec.Body.String()
		if i := strings.Index(body, "grpc-status:"); status == "" && i >= 0 {
			status = strings.TrimSpace(strings.SplitN(body[i+len("grpc-status:"):], "\r\n", 2)[0])
		}
		msg := ""
		if i := strings.Index(body, "grpc-message:"); i >= 0 {
			msg = strings.SplitN(body[i+len("grpc-message:"):], "\r\n", 2)[0]
		}
		code := map[string]string{"0": "", "3": "invalid_argument", "5": "not_found", "8": "resource_exhausted", "10": "aborted"}[status]
		if status != "0" && code == "" {
			t.Fatalf("%s: gRPC-Web status %q: %s", path, status, msg)
		}
		checkFuzzedError(t, path, code, msg)
	})
}

func checkFuzzedError(t *testing.T, path, code, msg string) {
	t.Helper()
	switch code {
	case "", "invalid_argument", "resource_exhausted", "not_found", "aborted":
	default:
		t.Fatalf("%s: code %q: %s", path, code, msg)
	}
	if len(msg) > 1024 {
		t.Fatalf("%s: error message of %d bytes echoes the input: %.100s…", path, len(msg), msg)
	}
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}
