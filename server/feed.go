package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/storage"
)

// Defaults of the change feed (see FeedOptions).
const (
	// DefaultFeedRetention is how long changes are kept: long enough for a device that
	// was off for a week to catch up from its cursor rather than re-list its stores.
	DefaultFeedRetention = 7 * 24 * time.Hour
	// DefaultMaxStreamsPerUser is how many WatchChanges streams one user may hold: a
	// few devices, each watching a few stores.
	DefaultMaxStreamsPerUser = 16
	// DefaultWatchHeartbeat is how often an idle stream sends a keep-alive, well under
	// the minute after which common proxies close idle connections. The stream also
	// reads the feed then, which bounds the delay of a lost notification.
	DefaultWatchHeartbeat = 20 * time.Second
	// DefaultWatchSendTimeout is how long one message may take to be written to a
	// stream before the stream is cut as a slow consumer.
	DefaultWatchSendTimeout = 30 * time.Second
	// DefaultFeedPruneInterval is how often Feed.Run deletes changes older than the
	// retention window.
	DefaultFeedPruneInterval = 10 * time.Minute
)

// Bounds of one page of the feed, for ListChanges and for each WatchChanges message.
const (
	// MaxChangesPageSize is the most changes in one page.
	MaxChangesPageSize = 100
	// MaxChangesPageValueBytes bounds the values of one page (a page holds at least one
	// change, whatever its value's size).
	MaxChangesPageValueBytes = 4 << 20
)

// FeedOptions configure the change feed. Zero fields take the defaults above; a
// negative MaxStreamsPerUser means no limit.
type FeedOptions struct {
	// Retention is how long changes are kept; a cursor older than that is expired.
	Retention time.Duration
	// PruneInterval is how often Run prunes the changes older than Retention.
	PruneInterval time.Duration
	// MaxStreamsPerUser caps the WatchChanges streams one user holds at once.
	MaxStreamsPerUser int
	// Heartbeat is how often an idle stream sends a keep-alive.
	Heartbeat time.Duration
	// SendTimeout bounds the writing of one stream message.
	SendTimeout time.Duration
}

func (o FeedOptions) withDefaults() FeedOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Retention, DefaultFeedRetention)
	def(&o.PruneInterval, DefaultFeedPruneInterval)
	def(&o.Heartbeat, DefaultWatchHeartbeat)
	def(&o.SendTimeout, DefaultWatchSendTimeout)
	if o.MaxStreamsPerUser == 0 {
		o.MaxStreamsPerUser = DefaultMaxStreamsPerUser
	}
	return o
}

// Feed serves the change feed (ListChanges, WatchChanges, GetChangeCursor) beside
// Service, with its validation and error mapping. Streams never queue changes: each
// reads the next page from the store when the previous one was written, so a slow
// consumer holds one page at most, and the database is the buffer. Notifications from
// the store only wake streams up.
type Feed struct {
	svc   *Service
	store storage.Feed
	opts  FeedOptions

	listen     sync.Once
	ctx        context.Context
	cancel     context.CancelFunc
	stopping   chan struct{}
	stopOnce   sync.Once
	mu         sync.Mutex
	streams    map[string]int
	waiting    map[[2]string]map[chan struct{}]struct{}
	everything map[chan struct{}]struct{}
}

// NewFeed returns the change feed of store; Close releases it. Use it in
// Options.Feed, and call Run to prune old changes and Shutdown when the server stops.
func NewFeed(store storage.Feed, opts FeedOptions, log *slog.Logger) *Feed {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Feed{
		svc: &Service{log: log}, store: store, opts: opts.withDefaults(),
		ctx: ctx, cancel: cancel, stopping: make(chan struct{}),
		streams: map[string]int{}, waiting: map[[2]string]map[chan struct{}]struct{}{},
	}
}

// Run prunes the changes older than the retention window every PruneInterval, until
// ctx ends.
func (f *Feed) Run(ctx context.Context) {
	t := time.NewTicker(f.opts.PruneInterval)
	defer t.Stop()
	for {
		n, err := f.store.PruneChanges(ctx, f.opts.Retention)
		if err != nil && ctx.Err() == nil {
			f.svc.log.Warn("change feed: pruning old changes failed", "err", err)
		} else if n > 0 {
			f.svc.log.Info("change feed: pruned old changes", "changes", n, "retention", f.opts.Retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Shutdown ends every stream with an unavailable error that carries its resume
// cursor, and refuses new ones. The server calls it when it starts shutting down, so
// that streams, which never finish on their own, do not hold the shutdown up.
func (f *Feed) Shutdown() {
	f.stopOnce.Do(func() { close(f.stopping) })
}

// Close shuts the feed down and stops listening for commits.
func (f *Feed) Close() {
	f.Shutdown()
	f.cancel()
}

// wake is the store's WatchCommits callback: it wakes the streams of one store, or all
// of them for user "".
func (f *Feed) wake(user, storeID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	signal := func(ch chan struct{}) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	if user == "" {
		for _, set := range f.waiting {
			for ch := range set {
				signal(ch)
			}
		}
		return
	}
	for ch := range f.waiting[[2]string{user, storeID}] {
		signal(ch)
	}
}

// subscribe registers a stream of (user, storeID), if the user has a stream left, and
// returns its wake-up channel and the function that unregisters it.
func (f *Feed) subscribe(user, storeID string) (chan struct{}, func(), bool) {
	f.listen.Do(func() {
		go func() { _ = f.store.WatchCommits(f.ctx, f.wake) }()
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opts.MaxStreamsPerUser > 0 && f.streams[user] >= f.opts.MaxStreamsPerUser {
		return nil, nil, false
	}
	f.streams[user]++
	key := [2]string{user, storeID}
	ch := make(chan struct{}, 1)
	if f.waiting[key] == nil {
		f.waiting[key] = map[chan struct{}]struct{}{}
	}
	f.waiting[key][ch] = struct{}{}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.waiting[key], ch)
		if len(f.waiting[key]) == 0 {
			delete(f.waiting, key)
		}
		if f.streams[user]--; f.streams[user] <= 0 {
			delete(f.streams, user)
		}
	}, true
}

// Cursors are the decimal sequence number of a store's last change seen; "" is the
// start of the feed. Clients treat them as opaque.
func encodeCursor(seq int64) string { return strconv.FormatInt(seq, 10) }

func decodeCursor(cursor string) (int64, error) {
	if cursor == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(cursor, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != cursor {
		return 0, invalidf("cursor %s was not issued by this server", QuoteInput(cursor))
	}
	return n, nil
}

func changeMessage(c storage.Change) *vssv1.Change {
	m := &vssv1.Change{Cursor: encodeCursor(c.Seq), Key: c.Key, Version: c.Version, Deleted: c.Deleted,
		DeviceId: c.DeviceID, ChangedAt: timestamppb.New(c.ChangedAt)}
	if c.HasValue {
		m.Value = c.Value
	}
	return m
}

// page reads the changes after `after`, at most limit of them.
func (f *Feed) page(ctx context.Context, user, storeID string, after int64, limit int, values bool) (storage.ChangePage, error) {
	return f.store.Changes(ctx, user, storage.ChangesRequest{
		StoreID: storeID, After: after, Limit: limit, WithValues: values, MaxValueBytes: MaxChangesPageValueBytes,
	})
}

// ListChanges returns one page of user's changes in req.StoreId after req.Cursor.
func (f *Feed) ListChanges(ctx context.Context, user string, req *vssv1.ListChangesRequest) (*vssv1.ListChangesResponse, error) {
	if err := validateStoreID(req.GetStoreId()); err != nil {
		return nil, err
	}
	after, err := decodeCursor(req.GetCursor())
	if err != nil {
		return nil, err
	}
	limit := MaxChangesPageSize
	switch size := req.GetPageSize(); {
	case size < 0:
		return nil, invalidf("page_size must not be negative, got %d", size)
	case size > 0 && size < MaxChangesPageSize:
		limit = int(size)
	}
	page, err := f.page(ctx, user, req.GetStoreId(), after, limit, req.GetIncludeValues())
	if err != nil {
		return nil, f.svc.classify(ctx, err)
	}
	resp := &vssv1.ListChangesResponse{Changes: make([]*vssv1.Change, len(page.Changes)), NextCursor: encodeCursor(after)}
	for i, c := range page.Changes {
		resp.Changes[i] = changeMessage(c)
		resp.NextCursor = resp.Changes[i].Cursor
		after = c.Seq
	}
	resp.HasMore = page.Head > after
	return resp, nil
}

// GetChangeCursor returns the cursor of the latest change of user's store.
func (f *Feed) GetChangeCursor(ctx context.Context, user string, req *vssv1.GetChangeCursorRequest) (*vssv1.GetChangeCursorResponse, error) {
	if err := validateStoreID(req.GetStoreId()); err != nil {
		return nil, err
	}
	page, err := f.store.Changes(ctx, user, storage.ChangesRequest{StoreID: req.GetStoreId(), HeadOnly: true})
	if err != nil {
		return nil, f.svc.classify(ctx, err)
	}
	return &vssv1.GetChangeCursorResponse{Cursor: encodeCursor(page.Head)}, nil
}

// WatchChanges serves one stream: it sends the changes after req.Cursor page by page,
// then waits for commits and sends what they changed, and an empty message carrying the
// cursor at the start and every Heartbeat while idle. It returns when the client goes
// away (nil), when the server shuts down or a message cannot be written in time (an
// Error with the cursor to resume from), or on any error of the store.
func (f *Feed) WatchChanges(ctx context.Context, user string, req *vssv1.WatchChangesRequest, send func(*vssv1.WatchChangesResponse) error) error {
	if err := validateStoreID(req.GetStoreId()); err != nil {
		return err
	}
	after, err := decodeCursor(req.GetCursor())
	if err != nil {
		return err
	}
	// A stream is not a request in flight: it gives its request slot back and counts
	// against the user's streams instead.
	releaseSlot(ctx)
	woken, unsubscribe, ok := f.subscribe(user, req.GetStoreId())
	if !ok {
		return &Error{Code: vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION, Reason: vssv1.FeedErrorReason_FEED_ERROR_REASON_STREAM_LIMIT,
			Message: "too many open change streams for this user (at most " + strconv.Itoa(f.opts.MaxStreamsPerUser) + "); close one first", RetryAfter: time.Second}
	}
	defer unsubscribe()
	deadlines := writeDeadlines(ctx)
	resumable := func(reason vssv1.FeedErrorReason, msg string) *Error {
		return &Error{Code: vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION, Reason: reason, Message: msg, ResumeCursor: encodeCursor(after), Unavailable: true}
	}
	write := func(m *vssv1.WatchChangesResponse) error {
		start := time.Now()
		if deadlines != nil {
			_ = deadlines.SetWriteDeadline(start.Add(f.opts.SendTimeout))
		}
		if err := send(m); err != nil {
			// A write that ran into the deadline resets the stream (HTTP/2) or the
			// connection, and the request's context ends with it: the client sees the
			// reset, not the error below, and resumes from the last cursor it received.
			if errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) >= f.opts.SendTimeout {
				f.svc.log.WarnContext(ctx, "change stream cut: a message could not be written within the send timeout (a slow consumer)",
					"request_id", RequestID(ctx), "store_id", req.GetStoreId(), "cursor", after, "send_timeout", f.opts.SendTimeout)
				return resumable(vssv1.FeedErrorReason_FEED_ERROR_REASON_SLOW_CONSUMER,
					"the stream could not deliver its changes in time; resume from the cursor")
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return resumable(vssv1.FeedErrorReason_FEED_ERROR_REASON_SLOW_CONSUMER,
				"the stream could not deliver its changes; resume from the cursor")
		}
		if deadlines != nil {
			// No deadline while idle: the stream stays open between messages.
			_ = deadlines.SetWriteDeadline(time.Time{})
		}
		return nil
	}
	heartbeat := time.NewTicker(f.opts.Heartbeat)
	defer heartbeat.Stop()
	// The first message tells the client the stream is open, and where it stands.
	announce := true
	for {
		select {
		case <-f.stopping:
			return resumable(vssv1.FeedErrorReason_FEED_ERROR_REASON_SHUTTING_DOWN,
				"the server is shutting down; resume from the cursor on another instance or shortly")
		default:
		}
		page, err := f.page(ctx, user, req.GetStoreId(), after, MaxChangesPageSize, req.GetIncludeValues())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e := f.svc.classify(ctx, err)
			e.ResumeCursor = encodeCursor(after)
			return e
		}
		if len(page.Changes) > 0 || announce {
			m := &vssv1.WatchChangesResponse{Changes: make([]*vssv1.Change, len(page.Changes))}
			for i, c := range page.Changes {
				m.Changes[i] = changeMessage(c)
			}
			next := after
			if n := len(page.Changes); n > 0 {
				next = page.Changes[n-1].Seq
			}
			m.Cursor = encodeCursor(next)
			if err := write(m); err != nil {
				if errors.Is(err, context.Canceled) {
					return nil
				}
				return err
			}
			after, announce = next, false
			if page.Head > after {
				continue // more is committed already
			}
		}
		select {
		case <-woken:
		case <-heartbeat.C:
			announce = true // a keep-alive, unless there are changes to send anyway
		case <-f.stopping:
		case <-ctx.Done():
			return nil
		}
	}
}

type slotKey struct{}

// earlySlot lets a stream give back its request slot before the request ends.
type earlySlot struct {
	once    sync.Once
	release func()
}

func (s *earlySlot) do() { s.once.Do(s.release) }

// withEarlyRelease returns ctx from which releaseSlot can give back release early,
// and the function the binding calls when the request ends (either way, once).
func withEarlyRelease(ctx context.Context, release func()) (context.Context, func()) {
	s := &earlySlot{release: release}
	return context.WithValue(ctx, slotKey{}, s), s.do
}

// releaseSlot gives back the request slot of ctx's request now.
func releaseSlot(ctx context.Context) {
	if s, ok := ctx.Value(slotKey{}).(*earlySlot); ok {
		s.do()
	}
}

type responseControllerKey struct{}

// writeDeadlines returns the controller of the request's response, through which a
// stream bounds the writing of each message, or nil.
func writeDeadlines(ctx context.Context) *http.ResponseController {
	rc, _ := ctx.Value(responseControllerKey{}).(*http.ResponseController)
	return rc
}
