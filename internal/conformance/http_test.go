package conformance_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/conformance"
	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/server"
	"github.com/govss/vss/storage/postgres"
	"github.com/govss/vss/storage/sqlite"
)

func memoryServer(t *testing.T, maxBody int64) string {
	t.Helper()
	s, err := sqlite.OpenMemory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, s, maxBody)
}

// do sends one raw HTTP request and returns the response with its body read.
func do(t *testing.T, method, url, contentType string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v := resp.Header.Get("vss-protocol-version"); v != "0" {
		t.Fatalf("%s %s: status %d without vss-protocol-version: 0 (got %q)", method, url, resp.StatusCode, v)
	}
	return resp, out
}

func user(name string) http.Header { return http.Header{conformance.UserHeader: {name}} }

func wantErrorResponse(t *testing.T, body []byte, code vssv1.ErrorCode) {
	t.Helper()
	var e vssv1.ErrorResponse
	if err := proto.Unmarshal(body, &e); err != nil {
		t.Fatalf("body is not an ErrorResponse: %v", err)
	}
	if e.GetErrorCode() != code || e.GetMessage() == "" {
		t.Fatalf("ErrorResponse = %v, want %s with a message", &e, code)
	}
}

// TestVSSHTTPErrors covers how the existing VSS HTTP API reports what is not a valid
// call: unknown paths, bodies that do not decode, over-limit bodies, missing
// authentication; each response carries the protocol header and an ErrorResponse.
func TestVSSHTTPErrors(t *testing.T) {
	t.Parallel()
	base := memoryServer(t, 4096)
	const ct = "application/octet-stream"

	resp, body := do(t, http.MethodPost, base+"/vss/nope", ct, nil, user("u"))
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown operation: status %d", resp.StatusCode)
	}
	wantErrorResponse(t, body, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)

	if resp, _ := do(t, http.MethodGet, base+"/no/such/path", "", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: status %d", resp.StatusCode)
	}

	for _, garbage := range [][]byte{{0xff, 0xff, 0xff}, []byte("not protobuf at all"), {0x0a, 0x05, 'a'}} {
		resp, body = do(t, http.MethodPost, base+"/vss/getObject", ct, bytes.NewReader(garbage), user("u"))
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("garbage body %q: status %d", garbage, resp.StatusCode)
		}
		wantErrorResponse(t, body, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
	}

	big, _ := proto.Marshal(&vssv1.PutObjectRequest{TransactionItems: []*vssv1.KeyValue{{Key: "k", Value: make([]byte, 8192)}}})
	resp, body = do(t, http.MethodPost, base+"/vss/putObjects", ct, bytes.NewReader(big), user("u"))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("over-limit body: status %d", resp.StatusCode)
	}
	wantErrorResponse(t, body, vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION)
	// Without a declared length the limit applies while reading.
	resp, body = do(t, http.MethodPost, base+"/vss/putObjects", ct, io.MultiReader(bytes.NewReader(big)), user("u"))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.ContentLength < 0 && len(body) == 0 {
		t.Fatalf("over-limit chunked body: status %d", resp.StatusCode)
	}

	// Authentication comes before the body: an unauthenticated over-limit request is a 401.
	resp, body = do(t, http.MethodPost, base+"/vss/putObjects", ct, bytes.NewReader(big), nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated: status %d", resp.StatusCode)
	}
	wantErrorResponse(t, body, vssv1.ErrorCode_AUTH_EXCEPTION)

	// Clients send application/octet-stream, but the reference server checks neither the
	// content type nor the method.
	ok, _ := proto.Marshal(&vssv1.GetObjectRequest{Key: "global_version"})
	resp, body = do(t, http.MethodPost, base+"/vss/getObject", "", bytes.NewReader(ok), user("u"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("request without content type: status %d", resp.StatusCode)
	}
	var got vssv1.GetObjectResponse
	if err := proto.Unmarshal(body, &got); err != nil || got.GetValue().GetKey() != "global_version" {
		t.Fatalf("GetObject(global_version) = %v, %v", &got, err)
	}
}

// TestVSSHTTPPipelining sends several requests on one connection without waiting for
// answers, as HTTP/1.1 clients may, and reads the answers in order.
func TestVSSHTTPPipelining(t *testing.T) {
	t.Parallel()
	base := memoryServer(t, 0)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	put, _ := proto.Marshal(&vssv1.PutObjectRequest{StoreId: "p", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 0, Value: []byte("v")}}})
	get, _ := proto.Marshal(&vssv1.GetObjectRequest{StoreId: "p", Key: "k"})
	var buf bytes.Buffer
	write := func(op string, body []byte) {
		req, _ := http.NewRequest(http.MethodPost, base+"/vss/"+op, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set(conformance.UserHeader, "pipeliner")
		_ = req.Write(&buf)
	}
	write("putObjects", put)
	for i := 0; i < 5; i++ {
		write("getObject", get)
	}
	if _, err := conn.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	for i := 0; i < 6; i++ {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("vss-protocol-version") != "0" {
			t.Fatalf("response %d: status %d, header %q", i, resp.StatusCode, resp.Header.Get("vss-protocol-version"))
		}
		if i > 0 {
			var got vssv1.GetObjectResponse
			if err := proto.Unmarshal(body, &got); err != nil || string(got.GetValue().GetValue()) != "v" {
				t.Fatalf("response %d: %v %v", i, &got, err)
			}
		}
	}
}

// TestConnectJSONByHand calls the Connect binding the way an operator does with curl:
// plain HTTP POSTs of JSON.
func TestConnectJSONByHand(t *testing.T) {
	t.Parallel()
	base := memoryServer(t, 0)
	const ct = "application/json"
	svc := base + "/vss.v1.VssService/"

	resp, body := do(t, http.MethodPost, svc+"PutObjects", ct,
		strings.NewReader(`{"storeId":"wallet","transactionItems":[{"key":"greeting","version":"0","value":"aGVsbG8="}]}`), user("op"))
	if resp.StatusCode != http.StatusOK || string(body) != "{}" {
		t.Fatalf("PutObjects: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodPost, svc+"GetObject", ct, strings.NewReader(`{"storeId":"wallet","key":"greeting"}`), user("op"))
	var got struct {
		Value struct{ Key, Version, Value string }
	}
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GetObject: %d %s", resp.StatusCode, body)
	}
	if got.Value.Key != "greeting" || got.Value.Version != "1" || got.Value.Value != "aGVsbG8=" {
		t.Fatalf("GetObject = %s", body)
	}
	resp, body = do(t, http.MethodPost, svc+"ListKeyVersions", ct, strings.NewReader(`{"storeId":"wallet"}`), user("op"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"key":"greeting"`) || !strings.Contains(string(body), `"globalVersion":"0"`) {
		t.Fatalf("ListKeyVersions: %d %s", resp.StatusCode, body)
	}

	// Errors are Connect JSON errors with the ErrorResponse as a detail.
	resp, body = do(t, http.MethodPost, svc+"GetObject", ct, strings.NewReader(`{"storeId":"wallet","key":"missing"}`), user("op"))
	var cerr struct {
		Code    string
		Message string
		Details []struct{ Type string }
	}
	if err := json.Unmarshal(body, &cerr); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if resp.StatusCode != http.StatusNotFound || cerr.Code != "not_found" || len(cerr.Details) != 1 || cerr.Details[0].Type != "vss.v1.ErrorResponse" {
		t.Fatalf("missing key: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodPost, svc+"PutObjects", ct,
		strings.NewReader(`{"storeId":"wallet","transactionItems":[{"key":"greeting","version":"0"}]}`), user("op"))
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), `"code":"aborted"`) {
		t.Fatalf("conflict: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodPost, svc+"GetObject", ct, strings.NewReader(`{"storeId":"wallet","key":"greeting"}`), nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"code":"unauthenticated"`) {
		t.Fatalf("unauthenticated: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodPost, svc+"GetObject", ct, strings.NewReader(`{"storeId":`), user("op"))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"code":"invalid_argument"`) {
		t.Fatalf("malformed JSON: %d %s", resp.StatusCode, body)
	}
}

// TestConnectBodyLimit checks that Connect refuses over-limit messages too.
func TestConnectBodyLimit(t *testing.T) {
	t.Parallel()
	base := memoryServer(t, 4096)
	resp, body := do(t, http.MethodPost, base+"/vss.v1.VssService/PutObjects", "application/proto",
		bytes.NewReader(make([]byte, 8192)), user("u"))
	if resp.StatusCode == http.StatusOK || !strings.Contains(string(body), "resource_exhausted") {
		t.Fatalf("over-limit Connect message: %d %s", resp.StatusCode, body)
	}
}

// TestHealthAndReflection checks the plain health endpoints, the gRPC health service and
// gRPC server reflection (what grpcurl uses): off by default, served with
// Options.GRPCReflection.
func TestHealthAndReflection(t *testing.T) {
	t.Parallel()
	base := memoryServer(t, 0)
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, body := do(t, http.MethodGet, base+path, "", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, body := do(t, http.MethodPost, base+"/grpc.health.v1.Health/Check", "application/json",
		strings.NewReader(`{"service":"vss.v1.VssService"}`), nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "SERVING") {
		t.Fatalf("health check: %d %s", resp.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	off := grpcreflect.NewClient(conformance.H2CClient(), base).NewStream(ctx)
	defer off.Close()
	if names, err := off.ListServices(); err == nil {
		t.Fatalf("reflection is on by default: it lists %v", names)
	}

	s, err := sqlite.OpenMemory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	on := serveOptions(t, server.Options{Store: s, Authorizer: testAuth, GRPCReflection: true})
	stream := grpcreflect.NewClient(conformance.H2CClient(), on).NewStream(ctx)
	defer stream.Close()
	names, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range names {
		found = found || n == "vss.v1.VssService"
	}
	if !found {
		t.Fatalf("reflection lists %v, want vss.v1.VssService", names)
	}
	files, err := stream.FileContainingSymbol("vss.v1.VssService")
	if err != nil || len(files) == 0 {
		t.Fatalf("reflection cannot describe the service: %v", err)
	}
}

// TestDatabaseUnavailable checks what clients see when the database cannot be reached:
// a retryable error without internal details (Connect unavailable; the VSS HTTP API's
// 500 INTERNAL_SERVER_EXCEPTION, which its clients retry), and /readyz failing.
func TestDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	store, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, store, 0)
	_ = store.Close() // the pool is gone: every query fails as the database being unreachable

	get, _ := proto.Marshal(&vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
	resp, body := do(t, http.MethodPost, base+"/vss/getObject", "application/octet-stream", bytes.NewReader(get), user("u"))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("VSS HTTP API: status %d", resp.StatusCode)
	}
	wantErrorResponse(t, body, vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION)
	var e vssv1.ErrorResponse
	_ = proto.Unmarshal(body, &e)
	if !strings.Contains(e.GetMessage(), resp.Header.Get("X-Request-Id")) || strings.Contains(strings.ToLower(e.GetMessage()), "pool") {
		t.Fatalf("message %q should name the request id and nothing internal", e.GetMessage())
	}

	resp, body = do(t, http.MethodPost, base+"/vss.v1.VssService/GetObject", "application/json", strings.NewReader(`{"key":"k"}`), user("u"))
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"code":"unavailable"`) || !strings.Contains(string(body), "vss.v1.ErrorResponse") {
		t.Fatalf("Connect: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, http.MethodGet, base+"/readyz", "", nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}
	if resp, _ := do(t, http.MethodGet, base+"/healthz", "", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
}
