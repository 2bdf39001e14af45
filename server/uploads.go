package server

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// DefaultUploadUserShareDivisor sets the default per-user share of the upload budget:
// 1/DefaultUploadUserShareDivisor of MaxUploadBytes, and never less than one largest
// request body (MaxBodyBytes), so that every user can always send one.
const DefaultUploadUserShareDivisor = 8

// DefaultMaxUploadBytes is the default budget of request-body bytes held by the VSS
// calls in flight, across all users.
const DefaultMaxUploadBytes = 1 << 30

// uploadChunk is how many bytes a body without a declared length reserves at a time.
const uploadChunk = 64 << 10

const uploadShareMessage = "this user is uploading too much at once, retry later"

// byteBudget bounds the request-body bytes that VSS calls hold in memory: at most total
// bytes across all calls, and at most perKey of them for one user. Bytes are reserved
// before they are read (a declared Content-Length at admission, then chunk by chunk as
// a body without one is read) and given back when the call ends, so one user's many
// large or slow uploads run into that user's share long before they run the server out
// of memory, and never take the bytes other users' calls need. Nobody waits for bytes:
// a reservation that does not fit is refused at once, like a call over its user's share
// of slots, with the same retryable answer.
type byteBudget struct {
	total, perKey int64 // 0: no cap

	mu       sync.Mutex
	inFlight int64
	held     map[string]int64
}

func newByteBudget(total, perKey int64) *byteBudget {
	return &byteBudget{total: max(total, 0), perKey: max(perKey, 0), held: make(map[string]int64)}
}

// reserve takes n bytes for key and reports whether they fit; shareFull tells, when
// they did not, whether the key's share rather than the total was the limit.
func (b *byteBudget) reserve(key string, n int64) (ok, shareFull bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.perKey > 0 && key != "" && b.held[key]+n > b.perKey {
		return false, true
	}
	if b.total > 0 && b.inFlight+n > b.total {
		return false, false
	}
	b.inFlight += n
	if key != "" {
		b.held[key] += n
	}
	return true, false
}

// give returns n bytes key reserved.
func (b *byteBudget) give(key string, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inFlight -= n
	if key == "" {
		return
	}
	if b.held[key] -= n; b.held[key] <= 0 {
		delete(b.held, key)
	}
}

// meteredBody is a request body that reserves its bytes in a byteBudget before it
// reads them.
type meteredBody struct {
	io.ReadCloser
	budgets  *budgets
	key      string
	reserved int64
	read     int64
	refused  *Error
}

// errUploadRefused is what a meteredBody's Read returns once its budget is spent. It
// unwraps to a *connect.Error, which the Connect, gRPC and gRPC-Web handlers answer
// with as it is; the VSS HTTP API finds the Error with uploadRefusal.
type errUploadRefused struct{ e *Error }

func (u errUploadRefused) Error() string { return u.e.Message }
func (u errUploadRefused) Unwrap() error { return connectError(u.e) }

func (m *meteredBody) Read(p []byte) (int, error) {
	if m.refused != nil {
		return 0, errUploadRefused{m.refused}
	}
	if len(p) == 0 {
		return m.ReadCloser.Read(p)
	}
	if m.read >= m.reserved {
		if e := m.budgets.reserveUpload(m.key, uploadChunk); e != nil {
			m.refused = e
			return 0, errUploadRefused{e}
		}
		m.reserved += uploadChunk
	}
	p = p[:min(int64(len(p)), m.reserved-m.read)]
	n, err := m.ReadCloser.Read(p)
	m.read += int64(n)
	return n, err
}

// uploadRefusal returns the Error a body read failed with when the upload budget
// refused it, or nil.
func uploadRefusal(err error) *Error {
	var u errUploadRefused
	if !errors.As(err, &u) {
		return nil
	}
	return u.e
}

// reserveUpload reserves n upload bytes for key, or returns the refusal to answer with.
func (b *budgets) reserveUpload(key string, n int64) *Error {
	ok, shareFull := b.uploads.reserve(key, n)
	if ok {
		return nil
	}
	if shareFull {
		b.metrics.refused(refusedUserUpload)
		return overloaded(uploadShareMessage)
	}
	b.metrics.refused(refusedServerUpload)
	return overloaded(overloadMessage)
}

// meterBody makes r's body reserve its bytes in the upload budget for user: its
// declared length at once (bodies over the limit are refused later, unread), the rest
// as it is read. It returns the function that gives the bytes back when the call ends.
func (b *budgets) meterBody(r *http.Request, user string, limit int64) (func(), *Error) {
	if b.uploads == nil || r.Body == nil || r.Body == http.NoBody {
		return func() {}, nil
	}
	key := user
	if !b.perUser {
		key = ""
	}
	m := &meteredBody{ReadCloser: r.Body, budgets: b, key: key}
	if n := r.ContentLength; n > 0 && n <= limit {
		if e := b.reserveUpload(key, n); e != nil {
			return nil, e
		}
		m.reserved = n
	}
	r.Body = m
	return func() { b.uploads.give(key, m.reserved) }, nil
}
