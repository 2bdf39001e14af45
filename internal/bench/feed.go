package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	vssclient "github.com/govss/vss/client"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// FeedLatency is the change feed's notification latency on one store: wallets whose
// one device writes while another watches, the two on different server instances
// sharing the database where the store allows it (PostgreSQL), on the same one
// otherwise (the embedded store belongs to one process).
type FeedLatency struct {
	Store     string `json:"store"`
	Instances int    `json:"instances"`
	Wallets   int    `json:"wallets"`
	// Interval is the time between one wallet's writes.
	IntervalMS float64 `json:"interval_ms"`
	// Changes is how many writes the watchers saw; Missed how many they had not seen
	// when the run ended (at most 5 s after the last write).
	Changes int `json:"changes"`
	Missed  int `json:"missed"`
	// From the write's acknowledgement (its PutObjects returned) to the watcher
	// receiving its change; negative values (the change arrived first) count as 0.
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
	// From sending the write to the watcher receiving its change.
	SendP50MS float64 `json:"send_p50_ms"`
	SendP99MS float64 `json:"send_p99_ms"`
}

// feedStore is the store every feed wallet writes and watches.
const feedStore = "feed-latency"

// measureFeed runs n wallets for d: each writes a new key every interval through the
// server at writerRoot, naming the device "writer", while a watcher of the same
// wallet follows the store through watcherRoot.
func measureFeed(ctx context.Context, store string, writerRoot, watcherRoot string, instances, n int, interval, d time.Duration) (FeedLatency, error) {
	res := FeedLatency{Store: store, Instances: instances, Wallets: n, IntervalMS: ms(interval)}
	ws, err := newWallets(n)
	if err != nil {
		return res, err
	}
	type sample struct{ sent, acked time.Time }
	var (
		mu        sync.Mutex
		pending   = map[string]sample{} // wallet/key -> when its write was sent and acknowledged
		early     = map[string]time.Time{}
		fromAck   []time.Duration
		fromSend  []time.Duration
		firstErr  error
		failMu    sync.Mutex
		recordErr = func(err error) {
			failMu.Lock()
			defer failMu.Unlock()
			if firstErr == nil {
				firstErr = err
			}
		}
	)
	arrived := func(id string, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		s, ok := pending[id]
		if !ok || s.acked.IsZero() {
			early[id] = at // before its write returned
			return
		}
		delete(pending, id)
		fromAck = append(fromAck, max(0, at.Sub(s.acked)))
		fromSend = append(fromSend, at.Sub(s.sent))
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * n}}
	client := func(root string, w *wallet, device string) *vssclient.Client {
		return vssclient.New(root, vssclient.WithHTTPClient(hc), vssclient.WithDeviceID(device),
			vssclient.WithHeaders(vssclient.HeaderFunc(func(context.Context) (http.Header, error) {
				return http.Header{"Authorization": {w.auth()}}, nil
			})))
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var watchers, writers sync.WaitGroup
	for i, w := range ws {
		watcher := client(watcherRoot, w, "watcher")
		cursor, err := watcher.GetChangeCursor(ctx, feedStore) // follows the store
		if err != nil {
			return res, fmt.Errorf("GetChangeCursor: %w", err)
		}
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			for ch, err := range watcher.Watch(watchCtx, &vssv1.WatchChangesRequest{StoreId: feedStore, Cursor: cursor}) {
				if err != nil {
					recordErr(fmt.Errorf("watch: %w", err))
					return
				}
				if ch.GetDeviceId() == "writer" {
					arrived(strconv.Itoa(i)+"/"+ch.GetKey(), time.Now())
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // the streams open
	end := time.Now().Add(d)
	for i, w := range ws {
		writer := client(writerRoot, w, "writer")
		writers.Add(1)
		go func() {
			defer writers.Done()
			// Spread the wallets over the interval.
			next := time.Now().Add(interval * time.Duration(i) / time.Duration(n))
			for k := 0; ; k++ {
				time.Sleep(time.Until(next))
				if time.Now().After(end) || ctx.Err() != nil {
					return
				}
				next = next.Add(interval)
				key := "k" + strconv.Itoa(k)
				id := strconv.Itoa(i) + "/" + key
				sent := time.Now()
				mu.Lock()
				pending[id] = sample{sent: sent}
				mu.Unlock()
				_, err := writer.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: feedStore,
					TransactionItems: []*vssv1.KeyValue{{Key: key, Version: -1, Value: []byte("x")}}})
				if err != nil {
					recordErr(fmt.Errorf("put: %w", err))
					return
				}
				acked := time.Now()
				mu.Lock()
				if at, ok := early[id]; ok {
					delete(early, id)
					delete(pending, id)
					fromAck = append(fromAck, 0)
					fromSend = append(fromSend, at.Sub(sent))
				} else {
					pending[id] = sample{sent: sent, acked: acked}
				}
				mu.Unlock()
			}
		}()
	}
	writers.Wait()
	for wait := time.Now().Add(5 * time.Second); time.Now().Before(wait); { // the last changes arrive
		mu.Lock()
		left := len(pending)
		mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopWatch()
	watchers.Wait()
	hc.CloseIdleConnections()
	mu.Lock()
	defer mu.Unlock()
	res.Changes, res.Missed = len(fromAck), len(pending)
	if firstErr != nil && !errors.Is(firstErr, context.Canceled) {
		return res, firstErr
	}
	if len(fromAck) == 0 {
		return res, errors.New("no change arrived")
	}
	slices.Sort(fromAck)
	slices.Sort(fromSend)
	res.P50MS, res.P99MS, res.MaxMS = quantileMS(fromAck, 0.5), quantileMS(fromAck, 0.99), ms(fromAck[len(fromAck)-1])
	res.SendP50MS, res.SendP99MS = quantileMS(fromSend, 0.5), quantileMS(fromSend, 0.99)
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func printFeed(w io.Writer, f FeedLatency) {
	fmt.Fprintf(w, "# feed latency (%s, %d instance(s), %d wallets, a write every %.0f ms each): %d changes, %d missed; "+
		"write acknowledged -> change received p50 %.2f ms, p99 %.2f ms, max %.2f ms; write sent -> received p50 %.2f ms, p99 %.2f ms\n",
		f.Store, f.Instances, f.Wallets, f.IntervalMS, f.Changes, f.Missed, f.P50MS, f.P99MS, f.MaxMS, f.SendP50MS, f.SendP99MS)
}
