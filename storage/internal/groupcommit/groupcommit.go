// Package groupcommit lets the writes of concurrent requests share one database
// transaction, and so one commit and one flush of the log to disk.
//
// A Queue has at most one batch in flight. A write that arrives while none is in flight
// is committed at once, alone, by the goroutine that brought it: there is no timer, and
// a lightly loaded server commits every write as soon as it arrives. Writes that arrive
// while a batch is in flight wait, and the next batch takes all of them together (up to
// a limit). The more writers wait for the disk, the larger the batches grow, while the
// number of commits per second stays what one writer alone achieves.
//
// What a batch means is the store's business: it receives the writes and answers each
// one on its own, and must give every write the outcome it would have had alone.
package groupcommit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/govss/vss/storage"
)

// Commit applies a batch of writes and returns the outcome of each, in order. ctx is
// canceled once every request of the batch has given up waiting, and carries the values
// of the first request's context (its trace span, for instance). The outcome Later
// leaves a write for the next batch; a Commit must apply at least one write of a batch.
type Commit[W any] func(ctx context.Context, batch []W) []error

// Later is the outcome a Commit gives the writes it leaves for the next batch, which
// takes them first.
var Later = errors.New("groupcommit: left for the next batch")

// Queue collects writes and commits them in batches. It is safe for concurrent use.
type Queue[W any] struct {
	commit Commit[W]
	max    int

	mu      sync.Mutex
	waiting []*call[W]
	// busy is true while a batch is being committed, or about to be; when it is false
	// nothing waits.
	busy bool

	batches, writes, shared, largest atomic.Int64
}

type call[W any] struct {
	w    W
	ctx  context.Context
	done chan struct{}
	err  error
}

// New returns a Queue that commits batches of at most max writes with commit.
func New[W any](max int, commit Commit[W]) *Queue[W] {
	return &Queue[W]{commit: commit, max: max}
}

// Do commits w, together with the writes of other goroutines that wait at the same
// moment, and returns its outcome. If ctx ends first Do returns ctx's error: a write
// whose batch has not started yet is dropped; one whose batch is running may still be
// committed, as a single statement interrupted at its commit may be.
func (q *Queue[W]) Do(ctx context.Context, w W) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &call[W]{w: w, ctx: ctx, done: make(chan struct{})}
	q.mu.Lock()
	q.waiting = append(q.waiting, c)
	lead := !q.busy
	q.busy = true
	q.mu.Unlock()
	if lead {
		// Nothing was in flight, so the queue held nothing before c: the batch this
		// goroutine commits now includes c. Writes that queued meanwhile are committed
		// by a goroutine of their own, so that c's answer is not held up by them.
		q.commitNext()
		if q.more() {
			go q.drain()
		}
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// more reports whether writes wait for a batch, and clears busy if none does.
func (q *Queue[W]) more() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		q.busy = false
		return false
	}
	return true
}

// drain commits batches until no write waits.
func (q *Queue[W]) drain() {
	for {
		q.commitNext()
		if !q.more() {
			return
		}
	}
}

// commitNext commits the writes that wait, up to max, as one batch.
func (q *Queue[W]) commitNext() {
	q.mu.Lock()
	n := min(len(q.waiting), q.max)
	calls := q.waiting[:n:n]
	q.waiting = q.waiting[n:]
	if len(q.waiting) == 0 {
		q.waiting = nil // let the backing array go
	}
	q.mu.Unlock()

	live := calls[:0:0]
	for _, c := range calls {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			close(c.done)
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(live[0].ctx))
	defer cancel()
	var remaining atomic.Int64
	remaining.Store(int64(len(live)))
	stops := make([]func() bool, len(live))
	batch := make([]W, len(live))
	for i, c := range live {
		batch[i] = c.w
		stops[i] = context.AfterFunc(c.ctx, func() {
			if remaining.Add(-1) == 0 {
				cancel()
			}
		})
	}
	errs := q.commit(ctx, batch)
	var later []*call[W]
	for i, c := range live {
		if errs[i] == Later {
			later = append(later, c)
		}
	}
	if len(later) == len(live) {
		// A Commit that applies nothing would leave the writes waiting for ever.
		for i := range errs {
			errs[i] = errors.New("groupcommit: the batch applied no write")
		}
		later = nil
	}
	if len(later) > 0 {
		q.mu.Lock()
		q.waiting = append(later, q.waiting...)
		q.mu.Unlock()
	}
	q.count(len(live) - len(later))
	for i, c := range live {
		stops[i]()
		if errs[i] == Later {
			continue
		}
		c.err = errs[i]
		close(c.done)
	}
}

// count adds a batch of n writes to the statistics.
func (q *Queue[W]) count(n int) {
	q.batches.Add(1)
	q.writes.Add(int64(n))
	if n > 1 {
		q.shared.Add(int64(n))
	}
	for {
		l := q.largest.Load()
		if int64(n) <= l || q.largest.CompareAndSwap(l, int64(n)) {
			return
		}
	}
}

// Pending returns how many writes wait for the next batch.
func (q *Queue[W]) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

// Stats returns what q committed so far.
func (q *Queue[W]) Stats() storage.GroupCommitStats {
	return storage.GroupCommitStats{Batches: q.batches.Load(), Writes: q.writes.Load(), Shared: q.shared.Load(), Largest: q.largest.Load()}
}
