// Package vssclient is a Go client for VSS (Versioned Storage Service) servers that
// serve the vss.v1.VssService Connect API, such as this repository's vss-server. It is
// the generated Connect client (package vssv1connect) with what applications need
// around it:
//
//   - Authentication headers, added to every attempt by a HeaderProvider: Signature
//     (the reference signature scheme, from a secp256k1 key), Bearer (a fixed token)
//     and LNURLAuth (a JWT fetched from an LNURL-auth issuer, cached and refreshed
//     before it expires).
//   - Retries with exponential backoff and jitter on failures that may pass
//     (unavailable, internal, unknown, an attempt's timeout, transport errors), never
//     on answers that will not change (conflict, not found, invalid request,
//     unauthenticated). See RetryPolicy.
//   - A timeout per attempt (WithTimeout); the context bounds the whole call.
//   - Error helpers: IsConflict, IsNotFound, IsInvalid, IsUnauthenticated and
//     ErrorCode, which map Connect codes back to the VSS error codes.
//   - ListAll, which follows ListKeyVersions' page tokens.
//   - The change feed and leases: Watch (an iterator that reconnects and resumes by
//     itself), ListChanges, GetChangeCursor, and AcquireLease, whose Lease renews
//     itself and fences the writes made through it. WithDeviceID names the device in
//     the changes its writes make.
//
// # Retried writes
//
// A failed attempt is ambiguous: the server may have committed a PutObjects before the
// connection broke or before the answer reached the client. Unconditional writes
// (version -1) and DeleteObject may be repeated safely. A conditional write (version 0
// or N, or a global version) that is retried after such an ambiguous failure may be
// answered "aborted" (IsConflict) because its first attempt did commit: the stored
// version is already the one the write produced. A caller that gets a conflict after
// retries (or after any failure it retried itself) should read the key back before
// concluding that someone else wrote it. Use WithRetry(RetryPolicy{MaxAttempts: 1}) to
// handle every failure yourself.
package vssclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
)

// Defaults of the client's options.
const (
	// DefaultTimeout bounds each attempt when WithTimeout is not given.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxAttempts is how many times a call is tried when RetryPolicy.MaxAttempts
	// is zero.
	DefaultMaxAttempts = 5
	// DefaultInitialBackoff is the wait before the first retry when
	// RetryPolicy.InitialBackoff is zero.
	DefaultInitialBackoff = 100 * time.Millisecond
	// DefaultMaxBackoff caps the wait between attempts when RetryPolicy.MaxBackoff is
	// zero.
	DefaultMaxBackoff = 3 * time.Second
)

// RetryPolicy says how often and how patiently a call is retried. Retries happen only
// on failures that may pass: the Connect codes unavailable, internal, unknown (which
// includes most transport errors), deadline_exceeded when an attempt's own timeout
// expired, and canceled while the call's context is live (connect-go reports a
// connection reset that way); never once the call's context is done. The wait before retry n (from 1) is drawn uniformly from [d/2, d] with
// d = min(InitialBackoff * 2^(n-1), MaxBackoff).
type RetryPolicy struct {
	// MaxAttempts is the number of attempts, the first included; 1 turns retries off,
	// zero means DefaultMaxAttempts.
	MaxAttempts int
	// InitialBackoff is the wait before the first retry; zero means
	// DefaultInitialBackoff.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait between attempts; zero means DefaultMaxBackoff.
	MaxBackoff time.Duration
}

// Option configures New.
type Option func(*options)

type options struct {
	httpClient connect.HTTPClient
	headers    HeaderProvider
	retry      RetryPolicy
	timeout    time.Duration
	connect    []connect.ClientOption
	device     string
}

// WithHeaders adds the headers of p to every attempt of every call: use it for
// authentication (Signature, Bearer, LNURLAuth).
func WithHeaders(p HeaderProvider) Option { return func(o *options) { o.headers = p } }

// WithHTTPClient sends the requests through c instead of http.DefaultClient.
func WithHTTPClient(c connect.HTTPClient) Option { return func(o *options) { o.httpClient = c } }

// WithRetry sets the retry policy; zero fields take their defaults.
func WithRetry(p RetryPolicy) Option { return func(o *options) { o.retry = p } }

// WithTimeout bounds each attempt of a call by d (DefaultTimeout without this option);
// zero or less means no bound other than the context's. An attempt that times out is
// retried while the call's context allows.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithDeviceID names the device in every write (PutObjects, DeleteObject, and those of
// a Lease): each change the write makes carries it in the change feed, so that the
// device can skip its own writes when it watches the store. 1 to 120 printable ASCII
// characters.
func WithDeviceID(id string) Option { return func(o *options) { o.device = id } }

// WithConnectOptions passes options to the generated Connect client, for example
// connect.WithGRPC() or connect.WithProtoJSON(). The client's own interceptor runs
// outermost, so interceptors given here run once per attempt.
func WithConnectOptions(opts ...connect.ClientOption) Option {
	return func(o *options) { o.connect = append(o.connect, opts...) }
}

// Client calls a VSS server. It is safe for concurrent use.
type Client struct {
	svc     vssv1connect.VssServiceClient
	headers HeaderProvider
	retry   RetryPolicy
	timeout time.Duration
	device  string
}

// New returns a client of the server at baseURL, the server's root URL such as
// https://vss.example.com (not the /vss path of the existing VSS HTTP API).
func New(baseURL string, opts ...Option) *Client {
	o := options{httpClient: http.DefaultClient, timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.retry.MaxAttempts <= 0 {
		o.retry.MaxAttempts = DefaultMaxAttempts
	}
	if o.retry.InitialBackoff <= 0 {
		o.retry.InitialBackoff = DefaultInitialBackoff
	}
	if o.retry.MaxBackoff <= 0 {
		o.retry.MaxBackoff = DefaultMaxBackoff
	}
	c := &Client{headers: o.headers, retry: o.retry, timeout: o.timeout, device: o.device}
	copts := append([]connect.ClientOption{connect.WithInterceptors(connect.UnaryInterceptorFunc(c.intercept))}, o.connect...)
	c.svc = vssv1connect.NewVssServiceClient(o.httpClient, strings.TrimSuffix(baseURL, "/"), copts...)
	return c
}

// Service returns the generated Connect client, with this client's headers, retries
// and timeouts, for callers that need request or response headers.
func (c *Client) Service() vssv1connect.VssServiceClient { return c.svc }

// GetObject returns the value and version stored under req's key. A missing key is an
// error for which IsNotFound reports true; the key "global_version" reads the store's
// global version.
func (c *Client) GetObject(ctx context.Context, req *vssv1.GetObjectRequest) (*vssv1.GetObjectResponse, error) {
	return unwrap(c.svc.GetObject(ctx, connect.NewRequest(req)))
}

// PutObjects writes and deletes keys, and optionally checks and bumps the global
// version, all or nothing. A version mismatch is an error for which IsConflict reports
// true; see the package documentation about conflicts after retries.
func (c *Client) PutObjects(ctx context.Context, req *vssv1.PutObjectRequest) (*vssv1.PutObjectResponse, error) {
	return unwrap(c.svc.PutObjects(ctx, connect.NewRequest(req)))
}

// DeleteObject deletes one key. It succeeds when the key is missing or its version
// differs; version -1 deletes whatever version is stored.
func (c *Client) DeleteObject(ctx context.Context, req *vssv1.DeleteObjectRequest) (*vssv1.DeleteObjectResponse, error) {
	return unwrap(c.svc.DeleteObject(ctx, connect.NewRequest(req)))
}

// ListKeyVersions returns one page of keys and their versions, newest created first.
func (c *Client) ListKeyVersions(ctx context.Context, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error) {
	return unwrap(c.svc.ListKeyVersions(ctx, connect.NewRequest(req)))
}

// ListAll lists every page from req on (its page size applies to each page) and
// returns them as one response: all keys in the server's order, the global version of
// the first page (present when req has no page token), and no next page token.
func (c *Client) ListAll(ctx context.Context, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error) {
	return c.ListAllProgress(ctx, req, nil)
}

// ListAllProgress is ListAll that calls progress, when not nil, with the number of keys
// listed so far after each page but the last (for a progress display).
func (c *Client) ListAllProgress(ctx context.Context, req *vssv1.ListKeyVersionsRequest, progress func(listed int)) (*vssv1.ListKeyVersionsResponse, error) {
	page := &vssv1.ListKeyVersionsRequest{StoreId: req.GetStoreId(), KeyPrefix: req.KeyPrefix, PageSize: req.PageSize, PageToken: req.PageToken}
	all := &vssv1.ListKeyVersionsResponse{}
	seen := map[string]bool{}
	for first := true; ; first = false {
		resp, err := c.ListKeyVersions(ctx, page)
		if err != nil {
			return nil, err
		}
		if first {
			all.GlobalVersion = resp.GlobalVersion
		}
		all.KeyVersions = append(all.KeyVersions, resp.GetKeyVersions()...)
		next := resp.GetNextPageToken()
		if next == "" {
			return all, nil
		}
		if progress != nil {
			progress(len(all.KeyVersions))
		}
		if seen[next] {
			return nil, fmt.Errorf("vssclient: the server answered the page token %q twice", next)
		}
		seen[next] = true
		page.PageToken = &next
	}
}

// unwrap returns the message of a Connect response.
func unwrap[T any](resp *connect.Response[T], err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// intercept runs a call's attempts: each with its own timeout and fresh headers, and
// with backoff between them while the failure may pass.
func (c *Client) intercept(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		var resp connect.AnyResponse
		err := c.withRetries(ctx, func() (err error) {
			resp, err = c.attempt(ctx, next, req)
			return err
		})
		return resp, err
	}
}

// withRetries runs call until it succeeds, fails in a way that will not pass, or has used
// the policy's attempts, with backoff between attempts; an end of ctx while it waits is
// an error that names the last failure.
func (c *Client) withRetries(ctx context.Context, call func() error) error {
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || attempt >= c.retry.MaxAttempts || !retryable(ctx, err) {
			return err
		}
		timer := time.NewTimer(c.backoff(attempt))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return connect.NewError(contextCode(ctx.Err()), fmt.Errorf("%w (after %d attempts; last: %v)", ctx.Err(), attempt, err))
		}
	}
}

// attempt makes one attempt of a call.
func (c *Client) attempt(ctx context.Context, next connect.UnaryFunc, req connect.AnyRequest) (connect.AnyResponse, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if c.headers != nil {
		h, err := c.headers.Headers(ctx)
		if err != nil {
			return nil, headerError(err)
		}
		for name, values := range h {
			req.Header().Del(name)
			for _, v := range values {
				req.Header().Add(name, v)
			}
		}
	}
	if c.device != "" && isWrite(req.Spec().Procedure) {
		req.Header().Set(DeviceIDHeader, c.device)
	}
	resp, err := next(ctx, req)
	c.invalidate(err)
	return resp, err
}

// isWrite reports whether procedure is one of the writes that name their device.
func isWrite(procedure string) bool {
	return procedure == vssv1connect.VssServicePutObjectsProcedure || procedure == vssv1connect.VssServiceDeleteObjectProcedure
}

// headerError makes a header provider's failure a Connect error: its own code if it
// has one, unauthenticated otherwise.
func headerError(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	return connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("vssclient: authentication headers: %w", err))
}

// retryable reports whether a failed attempt is worth another while ctx is live.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeInternal, connect.CodeUnknown, connect.CodeDeadlineExceeded:
		return true
	case connect.CodeCanceled:
		// The call's context is live, so the transport failed: connect-go reports a
		// connection reset by the peer as canceled.
		return true
	}
	return false
}

// contextCode is the Connect code of a context's error.
func contextCode(err error) connect.Code {
	if errors.Is(err, context.DeadlineExceeded) {
		return connect.CodeDeadlineExceeded
	}
	return connect.CodeCanceled
}

// backoff returns the wait after the given failed attempt (from 1).
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.MaxBackoff
	if shift := attempt - 1; shift < 30 {
		if b := c.retry.InitialBackoff << shift; b > 0 && b < d {
			d = b
		}
	}
	return d/2 + rand.N(d/2+1)
}
