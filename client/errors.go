package vssclient

import (
	"errors"

	"connectrpc.com/connect"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// IsConflict reports whether err is a version conflict (Connect code aborted, VSS
// CONFLICT_EXCEPTION): the write was not applied. After a retried conditional write
// the conflict may be the write's own first attempt; see the package documentation.
func IsConflict(err error) bool { return err != nil && connect.CodeOf(err) == connect.CodeAborted }

// IsNotFound reports whether err says that the key does not exist (Connect code
// not_found, VSS NO_SUCH_KEY_EXCEPTION).
func IsNotFound(err error) bool { return err != nil && connect.CodeOf(err) == connect.CodeNotFound }

// IsInvalid reports whether the server refused the request as malformed or beyond its
// limits (Connect code invalid_argument, VSS INVALID_REQUEST_EXCEPTION).
func IsInvalid(err error) bool {
	return err != nil && connect.CodeOf(err) == connect.CodeInvalidArgument
}

// IsUnauthenticated reports whether the credentials were missing or refused (Connect
// code unauthenticated, VSS AUTH_EXCEPTION), including a failure of the client's
// HeaderProvider that retrying cannot fix.
func IsUnauthenticated(err error) bool {
	return err != nil && connect.CodeOf(err) == connect.CodeUnauthenticated
}

// ErrorCode returns the VSS error code of err: the ErrorResponse detail the server
// attaches when there is one, otherwise the code that matches err's Connect code. nil,
// a canceled call and a call whose context expired give ErrorCode_UNKNOWN; unavailable,
// transport errors and every other failure give INTERNAL_SERVER_EXCEPTION.
func ErrorCode(err error) vssv1.ErrorCode {
	if err == nil {
		return vssv1.ErrorCode_UNKNOWN
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION
	}
	for _, d := range ce.Details() {
		if msg, err := d.Value(); err == nil {
			if r, ok := msg.(*vssv1.ErrorResponse); ok {
				return r.GetErrorCode()
			}
		}
	}
	switch ce.Code() {
	case connect.CodeAborted:
		return vssv1.ErrorCode_CONFLICT_EXCEPTION
	case connect.CodeNotFound:
		return vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION
	case connect.CodeInvalidArgument:
		return vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION
	case connect.CodeUnauthenticated:
		return vssv1.ErrorCode_AUTH_EXCEPTION
	case connect.CodeCanceled, connect.CodeDeadlineExceeded:
		return vssv1.ErrorCode_UNKNOWN
	}
	return vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION
}
