package faulttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"google.golang.org/protobuf/proto"

	"github.com/govss/vss/client/sigauth"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
)

// api is one binding of the service as a wallet calls it: one attempt per call, no
// retries, so that every outcome reaches the ledger.
type api interface {
	GetObject(ctx context.Context, req *vssv1.GetObjectRequest) (*vssv1.GetObjectResponse, error)
	PutObjects(ctx context.Context, req *vssv1.PutObjectRequest) error
	DeleteObject(ctx context.Context, req *vssv1.DeleteObjectRequest) error
	ListKeyVersions(ctx context.Context, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error)
}

// serverError is an answer of the server that refuses a request.
type serverError struct {
	code vssv1.ErrorCode
	msg  string
	// status is the HTTP status of the VSS HTTP API; zero for Connect.
	status int
	// connectCode is the Connect code; zero for the VSS HTTP API.
	connectCode connect.Code
}

func (e *serverError) Error() string {
	return fmt.Sprintf("%s (http %d, connect %v): %s", e.code, e.status, e.connectCode, e.msg)
}

// outcome is what a wallet may conclude from the answer to a write.
type outcome int

const (
	// applied: the server acknowledged the write; it must be durable.
	applied outcome = iota
	// refused: the server answered that it did not apply the write (conflict, invalid).
	refused
	// unknown: a server failure or a transport error; the write may or may not have
	// been applied, but never partly.
	unknown
)

func (o outcome) String() string { return [...]string{"applied", "refused", "unknown"}[o] }

// outcomeOf classifies the error of a write.
func outcomeOf(err error) outcome {
	var se *serverError
	switch {
	case err == nil:
		return applied
	case errors.As(err, &se) && se.code != vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION && se.code != vssv1.ErrorCode_UNKNOWN:
		return refused
	default:
		return unknown
	}
}

// foreignAnswer is an HTTP answer to the VSS HTTP API that did not come from a VSS
// server (it lacks the protocol header): a proxy's, such as HAProxy's 503 when no
// server instance is up.
type foreignAnswer struct {
	op     string
	status int
}

func (e *foreignAnswer) Error() string {
	return fmt.Sprintf("%s: status %d without the vss-protocol-version header", e.op, e.status)
}

// reportedRetryable reports whether a failed request was answered the way clients retry
// (vss-client-ng retries every error but a conflict, a missing key, an invalid request
// and a refused authentication; Connect clients retry unavailable): no answer at all (a
// transport error), the VSS HTTP API's 500 INTERNAL_SERVER_EXCEPTION, Connect's
// unavailable, or a proxy's 502, 503 or 504. A write whose outcome is unknown must be
// answered so: never as a success, and never with an error the client gives up on.
func reportedRetryable(err error) bool {
	var se *serverError
	var ce *connect.Error
	var fa *foreignAnswer
	switch {
	case errors.As(err, &se) && se.connectCode != 0:
		return se.connectCode == connect.CodeUnavailable
	case errors.As(err, &se):
		return se.status == http.StatusInternalServerError && se.code == vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION
	case errors.As(err, &ce) && transportError(ce):
		return true
	case errors.As(err, &ce):
		return ce.Code() == connect.CodeUnavailable
	case errors.As(err, &fa):
		return fa.status == http.StatusBadGateway || fa.status == http.StatusServiceUnavailable || fa.status == http.StatusGatewayTimeout
	}
	return true
}

// transportError reports whether a Connect client's error is its own, for want of an
// answer (a connection refused, reset or cut), which Connect reports under various codes
// (a reset as canceled, for instance).
func transportError(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

func isCode(err error, code vssv1.ErrorCode) bool {
	var se *serverError
	return errors.As(err, &se) && se.code == code
}

// newHTTPClient returns a client with its own connection pool, so that wallets do not
// share connections and a killed server breaks each wallet's own connections.
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// signer returns the Authorization header of the signature scheme for key, fresh per
// request.
func signer(key *secp256k1.PrivateKey) func() string {
	return func() string { return sigauth.Header(key, time.Now()) }
}

// legacyAPI calls the existing VSS HTTP API (binary protobuf at /vss/...).
type legacyAPI struct {
	base string // http://host:port
	http *http.Client
	auth func() string
}

func (c *legacyAPI) call(ctx context.Context, op string, req, resp proto.Message) error {
	body, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/vss/"+op, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/octet-stream")
	r.Header.Set("Authorization", c.auth())
	res, err := c.http.Do(r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.Header.Get("vss-protocol-version") != "0" {
		return &foreignAnswer{op: op, status: res.StatusCode}
	}
	if res.StatusCode == http.StatusOK {
		return proto.Unmarshal(data, resp)
	}
	var e vssv1.ErrorResponse
	if err := proto.Unmarshal(data, &e); err != nil {
		return fmt.Errorf("%s: status %d with an undecodable body: %w", op, res.StatusCode, err)
	}
	return &serverError{code: e.GetErrorCode(), msg: e.GetMessage(), status: res.StatusCode}
}

func (c *legacyAPI) GetObject(ctx context.Context, req *vssv1.GetObjectRequest) (*vssv1.GetObjectResponse, error) {
	resp := &vssv1.GetObjectResponse{}
	return resp, c.call(ctx, "getObject", req, resp)
}

func (c *legacyAPI) PutObjects(ctx context.Context, req *vssv1.PutObjectRequest) error {
	return c.call(ctx, "putObjects", req, &vssv1.PutObjectResponse{})
}

func (c *legacyAPI) DeleteObject(ctx context.Context, req *vssv1.DeleteObjectRequest) error {
	return c.call(ctx, "deleteObject", req, &vssv1.DeleteObjectResponse{})
}

func (c *legacyAPI) ListKeyVersions(ctx context.Context, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error) {
	resp := &vssv1.ListKeyVersionsResponse{}
	return resp, c.call(ctx, "listKeyVersions", req, resp)
}

// connectAPI calls vss.v1.VssService through the Connect protocol.
type connectAPI struct {
	svc vssv1connect.VssServiceClient
}

func newConnectAPI(base string, hc *http.Client, auth func() string, opts ...connect.ClientOption) *connectAPI {
	header := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", auth())
			return next(ctx, req)
		}
	})
	opts = append([]connect.ClientOption{connect.WithInterceptors(header)}, opts...)
	return &connectAPI{svc: vssv1connect.NewVssServiceClient(hc, base, opts...)}
}

// connectErr turns an error the server sent (it carries an ErrorResponse detail) into a
// serverError; transport errors stay as they are.
func connectErr(err error) error {
	var ce *connect.Error
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if e, ok := v.(*vssv1.ErrorResponse); derr == nil && ok {
			return &serverError{code: e.GetErrorCode(), msg: e.GetMessage(), connectCode: ce.Code()}
		}
	}
	return err
}

func (c *connectAPI) GetObject(ctx context.Context, req *vssv1.GetObjectRequest) (*vssv1.GetObjectResponse, error) {
	res, err := c.svc.GetObject(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, connectErr(err)
	}
	return res.Msg, nil
}

func (c *connectAPI) PutObjects(ctx context.Context, req *vssv1.PutObjectRequest) error {
	_, err := c.svc.PutObjects(ctx, connect.NewRequest(req))
	return connectErr(err)
}

func (c *connectAPI) DeleteObject(ctx context.Context, req *vssv1.DeleteObjectRequest) error {
	_, err := c.svc.DeleteObject(ctx, connect.NewRequest(req))
	return connectErr(err)
}

func (c *connectAPI) ListKeyVersions(ctx context.Context, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error) {
	res, err := c.svc.ListKeyVersions(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, connectErr(err)
	}
	return res.Msg, nil
}

// newAPI returns binding i%2 of the server at base: the VSS HTTP API or Connect.
func newAPI(i int, base string, key *secp256k1.PrivateKey) api {
	hc := newHTTPClient(15 * time.Second)
	if i%2 == 0 {
		return &legacyAPI{base: base, http: hc, auth: signer(key)}
	}
	return newConnectAPI(base, hc, signer(key))
}
