package faulttest

import (
	"bytes"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// TestOneUserLargeUploadsStayWithinItsShare: with default limits, one identity keeps 48
// uploads of 16 MiB bodies going at full speed over the VSS HTTP API. The request-body
// bytes its calls hold are bounded by its share of the upload budget
// (--max-upload-bytes-per-user, by default an eighth of --max-upload-bytes), so the
// server's memory stays bounded whatever the number of uploads, the uploads over the
// share are refused at once with 503, and another user's writes keep succeeding.
func TestOneUserLargeUploadsStayWithinItsShare(t *testing.T) {
	const bodySize = 16 << 20
	const maxPeakRSS = 768 << 20
	srv := startServer(t, "--database-url", "memory:", "--auth", "signature")
	ctx := testContext(t, 2*time.Minute)
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	auth := signer(key)
	body, err := proto.Marshal(&vssv1.PutObjectRequest{StoreId: "mallory",
		TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1, Value: bytes.Repeat([]byte{'m'}, bodySize-100)}}})
	if err != nil {
		t.Fatal(err)
	}
	by := newBystander(t, srv, nil)
	by.start(ctx)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, refused, other atomic.Int64
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := newHTTPClient(30 * time.Second)
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.url()+"/vss/putObjects", bytes.NewReader(body))
				req.Header.Set("Authorization", auth())
				req.Header.Set("Content-Type", "application/octet-stream")
				res, err := hc.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				res.Body.Close()
				switch res.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusServiceUnavailable:
					refused.Add(1)
					time.Sleep(20 * time.Millisecond)
				default:
					other.Add(1)
				}
			}
		}()
	}
	time.Sleep(6 * time.Second)
	close(stop)
	wg.Wait()
	by.finish(t, srv, "one user's large uploads", 0.01)
	peak := srv.peakRSS(t)
	t.Logf("mallory: %d uploads of %d MiB stored, %d refused at once (503), %d failed otherwise; server peak RSS %.0f MiB (bound %d MiB)",
		ok.Load(), bodySize>>20, refused.Load(), other.Load(), float64(peak)/(1<<20), maxPeakRSS>>20)
	if ok.Load() == 0 {
		t.Errorf("none of the user's uploads was stored: the share must leave room for them")
	}
	if peak > maxPeakRSS {
		t.Errorf("server peak RSS %d MiB, want at most %d MiB", peak>>20, maxPeakRSS>>20)
	}
}
