// Package conformance is the VSS contract written once as a test suite, run against every
// store through every binding: the existing VSS HTTP API and Connect in each of its
// protocols (Connect binary, Connect JSON, gRPC, gRPC-Web).
package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
)

// UserHeader names the header the test authorizer reads the user from.
const UserHeader = "X-Test-User"

// Client is one binding's view of the VSS service, acting as a given user. Every error
// it returns is a *Failure, after the client has checked that the binding reported it
// the way the contract says (status codes, error details, headers).
type Client interface {
	GetObject(ctx context.Context, user string, req *vssv1.GetObjectRequest) (*vssv1.GetObjectResponse, error)
	PutObjects(ctx context.Context, user string, req *vssv1.PutObjectRequest) (*vssv1.PutObjectResponse, error)
	DeleteObject(ctx context.Context, user string, req *vssv1.DeleteObjectRequest) (*vssv1.DeleteObjectResponse, error)
	ListKeyVersions(ctx context.Context, user string, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error)
}

// Failure is a request the server refused, reduced to its VSS error code.
type Failure struct {
	Code    vssv1.ErrorCode
	Message string
	// Status is the HTTP status of a refusal on the VSS HTTP API, 0 on Connect.
	Status int
	// ConnectCode is the code of a refusal on Connect, 0 on the VSS HTTP API.
	ConnectCode connect.Code
	// RetryAfter is the Retry-After header of the refusal, if any.
	RetryAfter string
}

func (f *Failure) Error() string { return fmt.Sprintf("%s: %s", f.Code, f.Message) }

// Binding names a way of calling the service and builds its client.
type Binding struct {
	Name string
	New  func(baseURL string) Client
}

// Credentials turns the user a test acts as into the headers that authenticate it. An
// empty user must yield no credentials.
type Credentials func(user string) http.Header

// TestUser authenticates as user through UserHeader, for servers running a test
// authorizer that trusts it.
func TestUser(user string) http.Header {
	if user == "" {
		return nil
	}
	return http.Header{UserHeader: {user}}
}

// Bindings are every binding the server offers, authenticating with creds.
func Bindings(creds Credentials) []Binding {
	return []Binding{
		{"vss-http", func(u string) Client {
			return &LegacyClient{BaseURL: u + "/vss", HTTP: http.DefaultClient, Creds: creds}
		}},
		{"connect-proto", func(u string) Client { return newConnectClient(u, creds, http.DefaultClient) }},
		{"connect-json", func(u string) Client { return newConnectClient(u, creds, http.DefaultClient, connect.WithProtoJSON()) }},
		{"grpc", func(u string) Client { return newConnectClient(u, creds, H2CClient(), connect.WithGRPC()) }},
		{"grpc-web", func(u string) Client { return newConnectClient(u, creds, http.DefaultClient, connect.WithGRPCWeb()) }},
	}
}

func setCredentials(h http.Header, creds Credentials, user string) {
	for k, v := range creds(user) {
		h[k] = v
	}
}

// H2CClient returns an HTTP client that speaks cleartext HTTP/2, as gRPC clients do.
func H2CClient() *http.Client {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &protocols}}
}

// LegacyClient calls the existing VSS HTTP API the way deployed clients do: a POST of
// the binary request to {BaseURL}/{operation}.
type LegacyClient struct {
	BaseURL string
	HTTP    *http.Client
	Creds   Credentials
}

func (c *LegacyClient) GetObject(ctx context.Context, user string, req *vssv1.GetObjectRequest) (*vssv1.GetObjectResponse, error) {
	return legacyCall(ctx, c, user, "getObject", req, new(vssv1.GetObjectResponse))
}

func (c *LegacyClient) PutObjects(ctx context.Context, user string, req *vssv1.PutObjectRequest) (*vssv1.PutObjectResponse, error) {
	return legacyCall(ctx, c, user, "putObjects", req, new(vssv1.PutObjectResponse))
}

func (c *LegacyClient) DeleteObject(ctx context.Context, user string, req *vssv1.DeleteObjectRequest) (*vssv1.DeleteObjectResponse, error) {
	return legacyCall(ctx, c, user, "deleteObject", req, new(vssv1.DeleteObjectResponse))
}

func (c *LegacyClient) ListKeyVersions(ctx context.Context, user string, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error) {
	return legacyCall(ctx, c, user, "listKeyVersions", req, new(vssv1.ListKeyVersionsResponse))
}

// legacyStatus is the status the contract pairs with each error code.
var legacyStatus = map[vssv1.ErrorCode]int{
	vssv1.ErrorCode_CONFLICT_EXCEPTION:        http.StatusConflict,
	vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION: http.StatusBadRequest,
	vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION:     http.StatusNotFound,
	vssv1.ErrorCode_AUTH_EXCEPTION:            http.StatusUnauthorized,
	vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION: http.StatusInternalServerError,
}

func legacyCall[Resp proto.Message](ctx context.Context, c *LegacyClient, user, op string, req proto.Message, resp Resp) (Resp, error) {
	var zero Resp
	body, err := proto.Marshal(req)
	if err != nil {
		return zero, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/"+op, bytes.NewReader(body))
	if err != nil {
		return zero, err
	}
	hreq.Header.Set("Content-Type", "application/octet-stream")
	setCredentials(hreq.Header, c.Creds, user)
	hresp, err := c.HTTP.Do(hreq)
	if err != nil {
		return zero, err
	}
	defer hresp.Body.Close()
	out, err := io.ReadAll(hresp.Body)
	if err != nil {
		return zero, err
	}
	if v := hresp.Header.Get("vss-protocol-version"); v != "0" {
		return zero, fmt.Errorf("%s: response without vss-protocol-version: 0 (got %q)", op, v)
	}
	if hresp.StatusCode != http.StatusOK {
		var e vssv1.ErrorResponse
		if err := proto.Unmarshal(out, &e); err != nil {
			return zero, fmt.Errorf("%s: status %d with a body that is not an ErrorResponse: %v", op, hresp.StatusCode, err)
		}
		want, ok := legacyStatus[e.GetErrorCode()]
		if hresp.StatusCode == http.StatusTooManyRequests && e.GetErrorCode() == vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION {
			want = http.StatusTooManyRequests // rate limited: a 429 that clients retry
		}
		if !ok || want != hresp.StatusCode {
			return zero, fmt.Errorf("%s: status %d does not match error code %s", op, hresp.StatusCode, e.GetErrorCode())
		}
		return zero, &Failure{Code: e.GetErrorCode(), Message: e.GetMessage(), Status: hresp.StatusCode, RetryAfter: hresp.Header.Get("Retry-After")}
	}
	if err := proto.Unmarshal(out, resp); err != nil {
		return zero, fmt.Errorf("%s: response does not decode: %v", op, err)
	}
	return resp, nil
}

// connectClient calls the Connect service with the generated client.
type connectClient struct {
	c     vssv1connect.VssServiceClient
	creds Credentials
}

func newConnectClient(baseURL string, creds Credentials, hc *http.Client, opts ...connect.ClientOption) *connectClient {
	return &connectClient{vssv1connect.NewVssServiceClient(hc, baseURL, opts...), creds}
}

func (c *connectClient) GetObject(ctx context.Context, user string, req *vssv1.GetObjectRequest) (*vssv1.GetObjectResponse, error) {
	return connectCall(ctx, c.creds, user, req, c.c.GetObject)
}

func (c *connectClient) PutObjects(ctx context.Context, user string, req *vssv1.PutObjectRequest) (*vssv1.PutObjectResponse, error) {
	return connectCall(ctx, c.creds, user, req, c.c.PutObjects)
}

func (c *connectClient) DeleteObject(ctx context.Context, user string, req *vssv1.DeleteObjectRequest) (*vssv1.DeleteObjectResponse, error) {
	return connectCall(ctx, c.creds, user, req, c.c.DeleteObject)
}

func (c *connectClient) ListKeyVersions(ctx context.Context, user string, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error) {
	return connectCall(ctx, c.creds, user, req, c.c.ListKeyVersions)
}

// connectCodes is the Connect code the server uses for each VSS error code; quotas
// and rate limits (see Failure.ConnectCode) are resource_exhausted.
var connectCodes = map[vssv1.ErrorCode][]connect.Code{
	vssv1.ErrorCode_CONFLICT_EXCEPTION:        {connect.CodeAborted},
	vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION: {connect.CodeInvalidArgument, connect.CodeResourceExhausted},
	vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION:     {connect.CodeNotFound},
	vssv1.ErrorCode_AUTH_EXCEPTION:            {connect.CodeUnauthenticated},
	vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION: {connect.CodeInternal, connect.CodeUnavailable, connect.CodeResourceExhausted},
}

func connectCall[Req, Resp any](ctx context.Context, creds Credentials, user string, msg *Req, call func(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error)) (*Resp, error) {
	req := connect.NewRequest(msg)
	setCredentials(req.Header(), creds, user)
	resp, err := call(ctx, req)
	if err != nil {
		var ce *connect.Error
		if !errors.As(err, &ce) {
			return nil, err
		}
		if v := ce.Meta().Get("vss-protocol-version"); v != "0" {
			return nil, fmt.Errorf("error response without vss-protocol-version: 0 (got %q): %w", v, err)
		}
		for _, d := range ce.Details() {
			m, derr := d.Value()
			if er, ok := m.(*vssv1.ErrorResponse); ok && derr == nil {
				if !containsCode(connectCodes[er.GetErrorCode()], ce.Code()) {
					return nil, fmt.Errorf("connect code %s does not match error code %s", ce.Code(), er.GetErrorCode())
				}
				if !strings.Contains(ce.Message(), er.GetMessage()) {
					return nil, fmt.Errorf("connect message %q differs from the ErrorResponse message %q", ce.Message(), er.GetMessage())
				}
				return nil, &Failure{Code: er.GetErrorCode(), Message: er.GetMessage(), ConnectCode: ce.Code(), RetryAfter: ce.Meta().Get("Retry-After")}
			}
		}
		// Errors raised by the protocol layer itself (a body that does not decode, an
		// over-limit message) carry no ErrorResponse.
		if ce.Code() == connect.CodeInvalidArgument {
			return nil, &Failure{Code: vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, Message: ce.Message()}
		}
		return nil, fmt.Errorf("connect error without an ErrorResponse detail: %w", err)
	}
	if v := resp.Header().Get("vss-protocol-version"); v != "0" {
		return nil, fmt.Errorf("response without vss-protocol-version: 0 (got %q)", v)
	}
	return resp.Msg, nil
}

func containsCode(codes []connect.Code, c connect.Code) bool {
	for _, x := range codes {
		if x == c {
			return true
		}
	}
	return false
}
