package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"

	"github.com/govss/vss/dump"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/transfer"
)

// Error is a failure the service reports to a client: a VSS error code and a message
// that is safe to show. Both bindings translate it, each in one function (connectError
// and legacyStatus).
type Error struct {
	Code    vssv1.ErrorCode
	Message string
	// Unavailable marks internal failures caused by an unreachable database; Connect
	// reports them as unavailable so that clients retry.
	Unavailable bool
	// Kind tells apart failures that share a code but not a status (see ErrorKind).
	Kind ErrorKind
	// RetryAfter, when positive, is sent in a Retry-After header, in whole seconds
	// rounded up, by both bindings.
	RetryAfter time.Duration
	// Reason, for errors of the change feed and of leases, is sent in a FeedError detail
	// with ResumeCursor and Lease, and chooses the Connect code (see connectError).
	Reason       vssv1.FeedErrorReason
	ResumeCursor string
	Lease        *vssv1.Lease
}

// ErrorKind refines an Error's code for the bindings and the metrics.
type ErrorKind uint8

const (
	// KindDefault is every failure that its code describes fully.
	KindDefault ErrorKind = iota
	// KindQuota is a write refused because it would exceed the user's quota
	// (INVALID_REQUEST_EXCEPTION, HTTP 400; Connect resource_exhausted).
	KindQuota
	// KindRateLimited is a request refused because its user, or for the LNURL-auth
	// endpoints its client address, sent requests faster than allowed
	// (INTERNAL_SERVER_EXCEPTION, which clients retry with backoff, HTTP 429; Connect
	// resource_exhausted), with RetryAfter set.
	KindRateLimited
	// KindPrecondition is a request refused because of the state of what it names
	// rather than its content: an import into a store that is not empty, the chunk of
	// an import the server does not know, a resumed import whose data differs
	// (CONFLICT_EXCEPTION; Connect failed_precondition).
	KindPrecondition
	// KindOverloaded is a request refused for want of a request slot, the server's or
	// its user's share (INTERNAL_SERVER_EXCEPTION, HTTP 503; Connect unavailable), with
	// RetryAfter set.
	KindOverloaded
)

func (e *Error) Error() string { return e.Code.String() + ": " + e.Message }

func invalidf(format string, args ...any) *Error {
	return &Error{Code: vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, Message: fmt.Sprintf(format, args...)}
}

func authError(msg string) *Error {
	return &Error{Code: vssv1.ErrorCode_AUTH_EXCEPTION, Message: msg}
}

// AuthError returns the error an Authorizer reports for a request it rejects; msg tells
// the client what is wrong with its credentials.
func AuthError(msg string) error { return authError(msg) }

// classify turns any error returned while serving a request into the Error the client
// sees, and notes it as the request's outcome for the metrics.
func (s *Service) classify(ctx context.Context, err error) *Error {
	e := s.toError(ctx, err)
	noteResult(ctx, resultOf(e))
	return e
}

// toError maps an error to the Error the client sees. Storage sentinels map to their VSS
// codes; everything unexpected becomes a generic internal error that names only the
// request id, and its cause is logged.
func (s *Service) toError(ctx context.Context, err error) *Error {
	var e *Error
	var qe *storage.QuotaError
	var fe *dump.FormatError
	var ne *storage.NotEmptyError
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, storage.ErrNotFound):
		return &Error{Code: vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION, Message: "no such key"}
	case errors.As(err, &qe):
		return &Error{Code: vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, Message: qe.Error(), Kind: KindQuota}
	case errors.As(err, &fe):
		return invalidf("bad dump, refused (nothing of it was kept): %v", fe)
	case errors.As(err, &ne):
		return &Error{Code: vssv1.ErrorCode_CONFLICT_EXCEPTION, Kind: KindPrecondition,
			Message: "import refused (nothing of it was kept): store " + QuoteInput(ne.StoreID) + " is not empty or belongs to another import; delete it first (DeleteStore) or resume that import"}
	case errors.Is(err, transfer.ErrMismatch):
		return &Error{Code: vssv1.ErrorCode_CONFLICT_EXCEPTION, Kind: KindPrecondition,
			Message: "import given up (nothing of it was kept): " + err.Error()}
	case errors.Is(err, storage.ErrConflict):
		return &Error{Code: vssv1.ErrorCode_CONFLICT_EXCEPTION, Message: "version conflict: the request was not applied"}
	case errors.Is(err, storage.ErrCursorExpired):
		return &Error{Code: vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, Reason: vssv1.FeedErrorReason_FEED_ERROR_REASON_CURSOR_EXPIRED,
			Message: "cursor expired: changes after it are no longer kept; list the store again and follow the feed from GetChangeCursor"}
	case errors.Is(err, storage.ErrCursorUnknown):
		return &Error{Code: vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, Reason: vssv1.FeedErrorReason_FEED_ERROR_REASON_CURSOR_UNKNOWN,
			Message: "cursor is beyond the store's latest change; list the store again and follow the feed from GetChangeCursor"}
	case errors.Is(err, storage.ErrLeaseHeld):
		e := &Error{Code: vssv1.ErrorCode_CONFLICT_EXCEPTION, Reason: vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_HELD,
			Message: "lease is held by another holder"}
		if lh := (*storage.LeaseHeldError)(nil); errors.As(err, &lh) {
			e.Lease = leaseMessage(lh.Lease)
			e.Message = "lease is held by " + QuoteInput(lh.Lease.Holder) + " for another " + lh.Lease.Remaining.Round(time.Millisecond).String()
		}
		return e
	case errors.Is(err, storage.ErrLeaseNotHeld):
		return &Error{Code: vssv1.ErrorCode_CONFLICT_EXCEPTION, Reason: vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_NOT_HELD,
			Message: "lease not held with this token (expired, released or granted to another holder): nothing was written"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.log.DebugContext(ctx, "request ended before it completed", "request_id", RequestID(ctx), "err", err)
		return &Error{Code: vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION, Message: "request canceled or timed out (request id " + RequestID(ctx) + ")", Unavailable: true}
	}
	unavailable := errors.Is(err, storage.ErrUnavailable)
	s.log.ErrorContext(ctx, "request failed", "request_id", RequestID(ctx), "err", err, "unavailable", unavailable)
	msg := "internal server error (request id " + RequestID(ctx) + ")"
	if unavailable {
		msg = "storage temporarily unavailable, retry later (request id " + RequestID(ctx) + ")"
	}
	return &Error{Code: vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION, Message: msg, Unavailable: unavailable}
}

// connectError translates a classified error into a Connect error carrying the
// ErrorResponse as a detail.
func connectError(e *Error) *connect.Error {
	code := connect.CodeInternal
	switch e.Code {
	case vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION:
		code = connect.CodeNotFound
	case vssv1.ErrorCode_CONFLICT_EXCEPTION:
		code = connect.CodeAborted
	case vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION:
		code = connect.CodeInvalidArgument
	case vssv1.ErrorCode_AUTH_EXCEPTION:
		code = connect.CodeUnauthenticated
	case vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION:
		if e.Unavailable {
			code = connect.CodeUnavailable
		}
	}
	switch e.Kind {
	case KindQuota, KindRateLimited:
		code = connect.CodeResourceExhausted
	case KindPrecondition:
		code = connect.CodeFailedPrecondition
	}
	switch e.Reason {
	case vssv1.FeedErrorReason_FEED_ERROR_REASON_UNSPECIFIED:
	case vssv1.FeedErrorReason_FEED_ERROR_REASON_STREAM_LIMIT, vssv1.FeedErrorReason_FEED_ERROR_REASON_SLOW_CONSUMER:
		code = connect.CodeResourceExhausted
	case vssv1.FeedErrorReason_FEED_ERROR_REASON_SHUTTING_DOWN:
		code = connect.CodeUnavailable
	default: // expired or unknown cursors, leases held or lost
		code = connect.CodeFailedPrecondition
	}
	ce := connect.NewError(code, errors.New(e.Message))
	setRetryAfter(ce.Meta(), e)
	if detail, err := connect.NewErrorDetail(&vssv1.ErrorResponse{ErrorCode: e.Code, Message: e.Message}); err == nil {
		ce.AddDetail(detail)
	}
	if e.Reason != vssv1.FeedErrorReason_FEED_ERROR_REASON_UNSPECIFIED {
		fe := &vssv1.FeedError{Reason: e.Reason, ResumeCursor: e.ResumeCursor, Lease: e.Lease}
		if detail, err := connect.NewErrorDetail(fe); err == nil {
			ce.AddDetail(detail)
		}
	}
	return ce
}

// legacyStatus is the HTTP status the existing VSS HTTP API uses for an error: the
// status of its code, except 429 for rate limiting.
func legacyStatus(e *Error) int {
	switch e.Kind {
	case KindRateLimited:
		return http.StatusTooManyRequests
	case KindOverloaded:
		return http.StatusServiceUnavailable
	}
	switch e.Code {
	case vssv1.ErrorCode_CONFLICT_EXCEPTION:
		return http.StatusConflict
	case vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION:
		return http.StatusBadRequest
	case vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION:
		return http.StatusNotFound
	case vssv1.ErrorCode_AUTH_EXCEPTION:
		return http.StatusUnauthorized
	default:
		return http.StatusInternalServerError
	}
}

// setRetryAfter sets the Retry-After header of an error response, in whole seconds
// rounded up, when e says when to retry.
func setRetryAfter(h http.Header, e *Error) {
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
}
