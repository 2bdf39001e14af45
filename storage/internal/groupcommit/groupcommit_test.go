package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestAloneCommitsAtOnce: a write that meets no other is committed alone, by its own
// call, and gets its own outcome.
func TestAloneCommitsAtOnce(t *testing.T) {
	var batches [][]int
	q := New(8, func(_ context.Context, batch []int) []error {
		batches = append(batches, batch)
		errs := make([]error, len(batch))
		for i, w := range batch {
			if w < 0 {
				errs[i] = fmt.Errorf("refused %d", w)
			}
		}
		return errs
	})
	if err := q.Do(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if err := q.Do(t.Context(), -2); err == nil || err.Error() != "refused -2" {
		t.Fatalf("Do(-2) = %v", err)
	}
	if len(batches) != 2 || len(batches[0]) != 1 || len(batches[1]) != 1 {
		t.Fatalf("batches %v, want two of one write", batches)
	}
	if st := q.Stats(); st.Batches != 2 || st.Writes != 2 || st.Shared != 0 || st.Largest != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestWaitingWritesShareABatch: writes that arrive while a batch is in flight form the
// next batch, at most max at a time, each with its own outcome; a write whose context
// ended before its batch started is dropped.
func TestWaitingWritesShareABatch(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var mu sync.Mutex
	var sizes []int
	q := New(4, func(ctx context.Context, batch []int) []error {
		if batch[0] == 0 {
			entered <- struct{}{}
			<-release
		}
		mu.Lock()
		sizes = append(sizes, len(batch))
		mu.Unlock()
		errs := make([]error, len(batch))
		for i, w := range batch {
			if w%2 == 1 {
				errs[i] = fmt.Errorf("odd %d", w)
			}
		}
		return errs
	})
	first := make(chan error, 1)
	go func() { first <- q.Do(context.Background(), 0) }()
	<-entered

	canceled, cancel := context.WithCancel(context.Background())
	dropped := make(chan error, 1)
	go func() { dropped <- q.Do(canceled, 100) }()
	for q.Pending() < 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-dropped; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled write: %v", err)
	}

	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Go(func() { errs[i-1] = q.Do(context.Background(), i) })
	}
	for q.Pending() < n+1 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		w := i + 1
		if (w%2 == 1) != (err != nil) {
			t.Errorf("write %d: %v", w, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// The first batch, then the 6 writes (the canceled one dropped) in batches of at most 4.
	total := 0
	for _, s := range sizes[1:] {
		if s > 4 {
			t.Errorf("batch of %d, max 4", s)
		}
		total += s
	}
	if sizes[0] != 1 || total != n {
		t.Errorf("batch sizes %v, want 1 then %d writes", sizes, n)
	}
	// The canceled write took one of the 4 places of the batch it was taken into.
	if st := q.Stats(); st.Largest != 3 || st.Writes != n+1 || st.Batches != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestLaterGoesFirstInTheNextBatch: a write the Commit leaves for later is committed by
// the next batch, and its caller gets that batch's outcome.
func TestLaterGoesFirstInTheNextBatch(t *testing.T) {
	var mu sync.Mutex
	var batches [][]int
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	q := New(8, func(_ context.Context, batch []int) []error {
		if batch[0] == 0 {
			entered <- struct{}{}
			<-release
		}
		mu.Lock()
		batches = append(batches, slices.Clone(batch))
		first := len(batches) == 2
		mu.Unlock()
		errs := make([]error, len(batch))
		for i, w := range batch {
			if first && w == 2 {
				errs[i] = Later
			}
		}
		return errs
	})
	done := make(chan error, 1)
	go func() { done <- q.Do(context.Background(), 0) }()
	<-entered
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := 1; i <= 3; i++ {
		wg.Go(func() { errs[i-1] = q.Do(context.Background(), i) })
	}
	for q.Pending() < 3 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if err := errors.Join(append(errs, <-done)...); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 3 || len(batches[1]) != 3 || !slices.Equal(batches[2], []int{2}) {
		t.Errorf("batches %v, want [0], the three, then [2]", batches)
	}
	if st := q.Stats(); st.Writes != 4 {
		t.Errorf("stats %+v, want 4 writes", st)
	}
}
