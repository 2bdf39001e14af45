package vssclient

import (
	"context"
	"errors"
	"iter"
	"time"

	"connectrpc.com/connect"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// Request headers of the writes that name their device or are fenced by a lease (see
// the top of proto/vss/v1/vss.proto).
const (
	DeviceIDHeader   = "Vss-Device-Id"
	LeaseNameHeader  = "Vss-Lease-Name"
	LeaseTokenHeader = "Vss-Lease-Token"
)

// ErrResync is what Watch and ListChanges fail with when the server no longer holds the
// changes after the cursor (FeedErrorReason CURSOR_EXPIRED) or never issued it
// (CURSOR_UNKNOWN): the client must list the store again (ListAll, GetObject) from a
// fresh GetChangeCursor, then follow the feed from that cursor. errors.Is(err,
// ErrResync) tells it; FeedError gives the detail.
var ErrResync = errors.New("vssclient: the change feed cannot continue from this cursor; list the store again")

// FeedError returns the FeedError detail the server attaches to the errors of the change
// feed and of leases, or nil.
func FeedError(err error) *vssv1.FeedError {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	for _, d := range ce.Details() {
		if msg, err := d.Value(); err == nil {
			if fe, ok := msg.(*vssv1.FeedError); ok {
				return fe
			}
		}
	}
	return nil
}

// FeedReason returns the reason of err's FeedError detail, or UNSPECIFIED.
func FeedReason(err error) vssv1.FeedErrorReason { return FeedError(err).GetReason() }

// resyncError wraps a cursor error of the server so that errors.Is(err, ErrResync).
type resyncError struct{ err error }

func (e *resyncError) Error() string   { return ErrResync.Error() + ": " + e.err.Error() }
func (e *resyncError) Unwrap() []error { return []error{ErrResync, e.err} }
func asResync(err error) error {
	switch FeedReason(err) {
	case vssv1.FeedErrorReason_FEED_ERROR_REASON_CURSOR_EXPIRED, vssv1.FeedErrorReason_FEED_ERROR_REASON_CURSOR_UNKNOWN:
		return &resyncError{err}
	}
	return err
}

// GetChangeCursor returns the cursor of the store's latest change. A device that starts
// from nothing takes it first, lists the store, then follows the feed from it: the
// server records a store's changes from the first time a device follows it.
func (c *Client) GetChangeCursor(ctx context.Context, storeID string) (string, error) {
	resp, err := unwrap(c.svc.GetChangeCursor(ctx, connect.NewRequest(&vssv1.GetChangeCursorRequest{StoreId: storeID})))
	if err != nil {
		return "", err
	}
	return resp.GetCursor(), nil
}

// ListChanges returns one page of the store's changes after req's cursor. A cursor the
// server cannot continue from is an error that matches ErrResync.
func (c *Client) ListChanges(ctx context.Context, req *vssv1.ListChangesRequest) (*vssv1.ListChangesResponse, error) {
	resp, err := unwrap(c.svc.ListChanges(ctx, connect.NewRequest(req)))
	return resp, asResync(err)
}

// ListChangesSince returns every change after req's cursor, page by page until the
// server has no more, and the cursor to continue from.
func (c *Client) ListChangesSince(ctx context.Context, req *vssv1.ListChangesRequest) ([]*vssv1.Change, string, error) {
	page := &vssv1.ListChangesRequest{StoreId: req.GetStoreId(), Cursor: req.GetCursor(), PageSize: req.GetPageSize(), IncludeValues: req.GetIncludeValues()}
	var all []*vssv1.Change
	for {
		resp, err := c.ListChanges(ctx, page)
		if err != nil {
			return nil, "", err
		}
		all = append(all, resp.GetChanges()...)
		if !resp.GetHasMore() || resp.GetNextCursor() == page.Cursor {
			return all, resp.GetNextCursor(), nil
		}
		page.Cursor = resp.GetNextCursor()
	}
}

// Watch follows a store's changes from req's cursor: it yields each change once, in
// commit order, as the server sends it, and keeps following until ctx ends (it then
// stops without an error) or a failure that reconnecting cannot fix, which it yields
// last. Each change carries the cursor to resume from (Change.Cursor); keep the last one
// to start a later Watch where this one ended.
//
// Watch reconnects by itself, with the client's backoff, for as long as ctx lasts: when
// the stream breaks, the server ends it to be resumed (shutting down, a consumer too
// slow, an instance killed), is unavailable, or the user has too many streams. It
// resumes from the last cursor received, so that no change is missed or repeated. A cursor the server cannot continue from yields an
// error that matches ErrResync. Watching an empty cursor starts at the beginning of the
// store's feed, which for a store written before anyone followed it is ErrResync: take
// GetChangeCursor first.
func (c *Client) Watch(ctx context.Context, req *vssv1.WatchChangesRequest) iter.Seq2[*vssv1.Change, error] {
	return func(yield func(*vssv1.Change, error) bool) {
		cursor := req.GetCursor()
		failures := 0
		for {
			received, err := c.watchOnce(ctx, req, &cursor, yield)
			if ctx.Err() != nil || errors.Is(err, errStopped) {
				return
			}
			if received {
				failures = 0
			}
			if fe := FeedError(err); fe.GetResumeCursor() != "" {
				cursor = fe.GetResumeCursor()
			}
			err = asResync(err)
			if !watchRetryable(ctx, err) {
				yield(nil, err)
				return
			}
			failures++
			timer := time.NewTimer(c.backoff(failures))
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return
			}
		}
	}
}

// errStopped ends watchOnce when the caller stopped iterating.
var errStopped = errors.New("vssclient: watch stopped")

// watchOnce runs one stream from *cursor, advancing it with every message, and reports
// whether any message arrived.
func (c *Client) watchOnce(ctx context.Context, req *vssv1.WatchChangesRequest, cursor *string, yield func(*vssv1.Change, error) bool) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := connect.NewRequest(&vssv1.WatchChangesRequest{StoreId: req.GetStoreId(), Cursor: *cursor, IncludeValues: req.GetIncludeValues()})
	if err := c.streamHeaders(ctx, r.Header()); err != nil {
		return false, err
	}
	stream, err := c.svc.WatchChanges(ctx, r)
	if err != nil {
		return false, err
	}
	defer stream.Close()
	received := false
	for stream.Receive() {
		received = true
		m := stream.Msg()
		for _, ch := range m.GetChanges() {
			if !yield(ch, nil) {
				return received, errStopped
			}
			*cursor = ch.GetCursor()
		}
		if m.GetCursor() != "" {
			*cursor = m.GetCursor()
		}
	}
	err = stream.Err()
	if err == nil {
		// A server never ends a stream without an error: the connection was cut.
		err = connect.NewError(connect.CodeUnavailable, errors.New("vssclient: the change stream ended"))
	}
	c.invalidate(err)
	return received, err
}

// watchRetryable reports whether a stream that failed with err is worth opening again.
func watchRetryable(ctx context.Context, err error) bool {
	if errors.Is(err, ErrResync) {
		return false
	}
	switch FeedReason(err) {
	case vssv1.FeedErrorReason_FEED_ERROR_REASON_STREAM_LIMIT, vssv1.FeedErrorReason_FEED_ERROR_REASON_SLOW_CONSUMER,
		vssv1.FeedErrorReason_FEED_ERROR_REASON_SHUTTING_DOWN:
		return true
	}
	return retryable(ctx, err) || connect.CodeOf(err) == connect.CodeResourceExhausted
}
