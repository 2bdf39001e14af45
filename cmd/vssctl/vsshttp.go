package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	vssclient "github.com/govss/vss/client"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// kvAPI is the part of the VSS API that every server speaks, the reference server's VSS
// HTTP API as well as Connect: what export, import and migrate need of a server that
// speaks only that. *vssclient.Client and *vssHTTP implement it.
type kvAPI interface {
	GetObject(ctx context.Context, req *vssv1.GetObjectRequest) (*vssv1.GetObjectResponse, error)
	PutObjects(ctx context.Context, req *vssv1.PutObjectRequest) (*vssv1.PutObjectResponse, error)
	ListKeyVersions(ctx context.Context, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error)
}

// speaksOnlyVSSHTTP reports whether the server at rawURL is addressed by the URL of the
// VSS HTTP API (the reference server's protocol), whose path ends in /vss as its clients
// configure it (http://host:8080/vss), rather than by a Connect base URL.
func speaksOnlyVSSHTTP(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/vss")
}

// vssHTTP calls a server's VSS HTTP API as deployed clients do: a POST of the binary
// protobuf request to {base}/{operation}, answered with the binary response and status
// 200, or with an ErrorResponse and the status of its code. Its errors are *connect.Error
// with the code Connect gives the same VSS error, so that exitCode classifies them.
type vssHTTP struct {
	base     string
	http     *http.Client
	headers  vssclient.HeaderProvider
	attempts int
	timeout  time.Duration
}

// newVSSHTTP returns a client of the VSS HTTP API at e.url, with the command's timeout
// and retries.
func (c *command) newVSSHTTP(e endpoint) *vssHTTP {
	return &vssHTTP{base: strings.TrimSuffix(e.url, "/"), http: http.DefaultClient, headers: e.headers, attempts: c.retries, timeout: c.attemptTimeout()}
}

// GetObject reads a key, or the store's global version.
func (v *vssHTTP) GetObject(ctx context.Context, req *vssv1.GetObjectRequest) (*vssv1.GetObjectResponse, error) {
	resp := new(vssv1.GetObjectResponse)
	return resp, v.call(ctx, "getObject", req, resp)
}

// PutObjects writes keys, all or nothing.
func (v *vssHTTP) PutObjects(ctx context.Context, req *vssv1.PutObjectRequest) (*vssv1.PutObjectResponse, error) {
	resp := new(vssv1.PutObjectResponse)
	return resp, v.call(ctx, "putObjects", req, resp)
}

// ListKeyVersions lists one page of keys, newest created first.
func (v *vssHTTP) ListKeyVersions(ctx context.Context, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error) {
	resp := new(vssv1.ListKeyVersionsResponse)
	return resp, v.call(ctx, "listKeyVersions", req, resp)
}

// call runs one operation, retrying with backoff, as vssclient does, while the failure
// may pass: a transport error, a status of 500 and above.
func (v *vssHTTP) call(ctx context.Context, op string, req, resp proto.Message) error {
	body, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err = v.attempt(ctx, op, body, resp)
		if err == nil || attempt >= v.attempts || ctx.Err() != nil || !retryableHTTP(err) {
			return err
		}
		backoff := min(vssclient.DefaultInitialBackoff<<(attempt-1), vssclient.DefaultMaxBackoff)
		timer := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return err
		}
	}
}

// retryableHTTP reports whether a failed attempt is worth another.
func retryableHTTP(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeInternal, connect.CodeUnknown, connect.CodeDeadlineExceeded:
		return true
	}
	return false
}

// attempt makes one attempt of an operation.
func (v *vssHTTP) attempt(ctx context.Context, op string, body []byte, resp proto.Message) error {
	if v.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.timeout)
		defer cancel()
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, v.base+"/"+op, bytes.NewReader(body))
	if err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	hreq.Header.Set("Content-Type", "application/octet-stream")
	if v.headers != nil {
		h, err := v.headers.Headers(ctx)
		if err != nil {
			return connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("authentication headers: %w", err))
		}
		for name, values := range h {
			hreq.Header[name] = values
		}
	}
	hresp, err := v.http.Do(hreq)
	if err != nil {
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s %s: %w", op, v.base, err))
	}
	defer hresp.Body.Close()
	out, err := io.ReadAll(hresp.Body)
	if err != nil {
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: reading the answer: %w", op, err))
	}
	if hresp.StatusCode != http.StatusOK {
		if hresp.StatusCode == http.StatusUnauthorized {
			if inv, ok := v.headers.(interface{ Invalidate() }); ok {
				inv.Invalidate() // a refused LNURL-auth token: log in again next time
			}
		}
		return httpError(op, hresp, out)
	}
	if err := proto.Unmarshal(out, resp); err != nil {
		return connect.NewError(connect.CodeUnknown, fmt.Errorf("%s: the answer is not a %s: %v (is %s a VSS HTTP API?)",
			op, resp.ProtoReflect().Descriptor().Name(), err, v.base))
	}
	return nil
}

// vssHTTPCodes is the Connect code of each VSS error code, as the server's Connect
// binding reports the same error.
var vssHTTPCodes = map[vssv1.ErrorCode]connect.Code{
	vssv1.ErrorCode_CONFLICT_EXCEPTION:        connect.CodeAborted,
	vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION: connect.CodeInvalidArgument,
	vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION:     connect.CodeNotFound,
	vssv1.ErrorCode_AUTH_EXCEPTION:            connect.CodeUnauthenticated,
	vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION: connect.CodeInternal,
}

// httpError turns a refusal of the VSS HTTP API into a *connect.Error: the code of its
// ErrorResponse, resource_exhausted with the ErrorResponse attached for a quota or rate
// limit (429), and without it for a body over the server's limit (413).
func httpError(op string, hresp *http.Response, body []byte) error {
	var e vssv1.ErrorResponse
	if proto.Unmarshal(body, &e) != nil || (e.GetErrorCode() == vssv1.ErrorCode_UNKNOWN && e.GetMessage() == "") {
		code := connect.CodeUnknown
		switch {
		case hresp.StatusCode == http.StatusRequestEntityTooLarge:
			code = connect.CodeResourceExhausted
		case hresp.StatusCode == http.StatusNotFound:
			code = connect.CodeUnimplemented
		case hresp.StatusCode >= 500:
			code = connect.CodeUnavailable
		}
		return connect.NewError(code, fmt.Errorf("%s: HTTP status %d without a VSS error (is this a VSS HTTP API?)", op, hresp.StatusCode))
	}
	code, ok := vssHTTPCodes[e.GetErrorCode()]
	if !ok {
		code = connect.CodeUnknown
	}
	if hresp.StatusCode == http.StatusTooManyRequests || hresp.StatusCode == http.StatusRequestEntityTooLarge {
		code = connect.CodeResourceExhausted
	}
	ce := connect.NewError(code, errors.New(e.GetMessage()))
	if hresp.StatusCode == http.StatusTooManyRequests {
		if detail, err := connect.NewErrorDetail(&e); err == nil {
			ce.AddDetail(detail) // a quota or rate limit: exit code 7
		}
		if after := hresp.Header.Get("Retry-After"); after != "" {
			ce.Meta().Set("Retry-After", after)
		}
	}
	return ce
}

// listKeys returns the names of every key of a store in creation order, oldest first
// (the reverse of the listing). It holds only the names in memory.
func listKeys(ctx context.Context, api kvAPI, storeID string, progress func(listed int)) ([]string, error) {
	var keys []string
	req := &vssv1.ListKeyVersionsRequest{StoreId: storeID}
	seen := map[string]bool{}
	for {
		resp, err := api.ListKeyVersions(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, kv := range resp.GetKeyVersions() {
			keys = append(keys, kv.GetKey())
		}
		next := resp.GetNextPageToken()
		if next == "" {
			break
		}
		if seen[next] {
			return nil, fmt.Errorf("listing store %q: the server returned the page token %q twice", storeID, next)
		}
		seen[next] = true
		req.PageToken = &next
		if progress != nil {
			progress(len(keys))
		}
	}
	slices.Reverse(keys)
	return keys, nil
}

// globalVersion reads a store's global version, 0 when it was never set: the API cannot
// tell the two apart.
func globalVersion(ctx context.Context, api kvAPI, storeID string) (int64, error) {
	resp, err := api.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: storeID, Key: globalVersionKey})
	if err != nil {
		return 0, err
	}
	return resp.GetValue().GetVersion(), nil
}
