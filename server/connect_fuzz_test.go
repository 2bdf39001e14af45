package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// FuzzConnectJSON posts arbitrary JSON bodies to each method of vss.v1.VssService with
// the Connect protocol: every answer is a success or a Connect error whose code and
// HTTP status agree and are never internal or unknown; an acknowledged PutObjects reads
// back exactly, and an answer to GetObject names the requested key.
func FuzzConnectJSON(f *testing.F) {
	methods := []string{"GetObject", "PutObjects", "DeleteObject", "ListKeyVersions"}
	seeds := map[int][]proto.Message{
		0: {&vssv1.GetObjectRequest{StoreId: "s", Key: "k"}, &vssv1.GetObjectRequest{Key: "global_version"}},
		1: {&vssv1.PutObjectRequest{StoreId: "s", GlobalVersion: proto.Int64(0), TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 0, Value: []byte("v")}}},
			&vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1, Value: []byte{0xff}}}, DeleteItems: []*vssv1.KeyValue{{Key: "a", Version: 1}}}},
		2: {&vssv1.DeleteObjectRequest{StoreId: "s", KeyValue: &vssv1.KeyValue{Key: "k", Version: -1}}},
		3: {&vssv1.ListKeyVersionsRequest{StoreId: "s", KeyPrefix: proto.String("k"), PageSize: proto.Int32(1), PageToken: proto.String("5")}},
	}
	for op, ms := range seeds {
		for _, m := range ms {
			b, _ := protojson.Marshal(m)
			f.Add(uint8(op), b)
		}
	}
	for op := range methods {
		for _, s := range []string{`{}`, `{"storeId":1}`, `{"transactionItems":[{"key":"k","version":"-1","value":"!!"}]}`,
			`{"keyValue":{"key":"k","version":"9223372036854775808"}}`, `{"pageSize":-1,"unknown":true}`, `[]`, ``, `null`} {
			f.Add(uint8(op), []byte(s))
		}
	}
	h := newHandler(f)
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		method := methods[int(op)%len(methods)]
		rec := post(h, "/vss.v1.VssService/"+method, "application/json", body)
		if rec.Code != http.StatusOK {
			var e struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("%s %q: status %d with a body that is not a Connect error: %q", method, body, rec.Code, rec.Body.Bytes())
			}
			want := map[string]int{"invalid_argument": 400, "not_found": 404, "aborted": 409}[e.Code]
			if rec.Code != want {
				t.Fatalf("%s %q: status %d, code %q: %s", method, body, rec.Code, e.Code, e.Message)
			}
			return
		}
		// Connect's JSON codec ignores unknown fields.
		opts := protojson.UnmarshalOptions{DiscardUnknown: true}
		switch method {
		case "PutObjects":
			var req vssv1.PutObjectRequest
			if err := opts.Unmarshal(body, &req); err != nil {
				t.Fatalf("acknowledged a body that does not decode: %v", err)
			}
			checkPutApplied(t, h, &req)
		case "GetObject":
			var req vssv1.GetObjectRequest
			var resp vssv1.GetObjectResponse
			if err := opts.Unmarshal(body, &req); err != nil {
				t.Fatalf("acknowledged a body that does not decode: %v", err)
			}
			if err := protojson.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("undecodable answer %q: %v", rec.Body.Bytes(), err)
			}
			if resp.GetValue().GetKey() != req.GetKey() {
				t.Fatalf("asked for %q, answered %q", req.GetKey(), resp.GetValue().GetKey())
			}
		}
	})
}
