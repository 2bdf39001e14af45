package app

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
	"github.com/govss/vss/server"
)

// dial opens a raw TCP connection to the server at base.
func dial(t *testing.T, base string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether the server closes c (or answers and closes) within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// putBody is a PutObjects request of about n bytes.
func putBody(t *testing.T, key string, n int) []byte {
	t.Helper()
	b, err := proto.Marshal(&vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: key, Version: -1, Value: bytes.Repeat([]byte{1}, n)}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkServing fails t unless a health check and a VSS request succeed promptly.
func checkServing(t *testing.T, base string) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	res, err := c.Get(base + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", res, err)
	}
	res.Body.Close()
	res, err = c.Post(base+"/vss/putObjects", "application/octet-stream", bytes.NewReader(putBody(t, "check", 10)))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("putObjects: %v %v", res, err)
	}
	res.Body.Close()
}

func TestSlowHeadersAreCutOffWhileOthersAreServed(t *testing.T) {
	t.Parallel()
	base := start(t, Config{Auth: AuthConfig{Schemes: "none"}, Limits: LimitsConfig{ReadHeaderTimeout: time.Second}})
	c := dial(t, base)
	if _, err := io.WriteString(c, "POST /vss/getObject HTTP/1.1\r\nHost: vss\r\n"); err != nil {
		t.Fatal(err)
	}
	// Dribble a header line every 200 ms; the server must hang up after about a second
	// however long this goes on, while serving others normally.
	cut := make(chan time.Duration, 1)
	began := time.Now()
	go func() {
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(c, "X-Slow-%d: x\r\n", i); err != nil {
				cut <- time.Since(began)
				return
			}
			time.Sleep(200 * time.Millisecond)
			if time.Since(began) > 10*time.Second {
				cut <- 0
				return
			}
		}
	}()
	go func() { _, _ = io.Copy(io.Discard, c) }() // see the close as soon as it happens
	for range 5 {
		checkServing(t, base)
		time.Sleep(100 * time.Millisecond)
	}
	d := <-cut
	if d == 0 {
		t.Fatal("a client dribbling headers was still connected after 10 s (header timeout 1 s)")
	}
	if d > 4*time.Second {
		t.Errorf("a client dribbling headers was cut after %v, want about 1 s", d)
	}
	checkServing(t, base)
}

// slowBody sends the headers of a PutObjects with body, then the body in chunks of
// chunk bytes every pause, and returns the response status (0 if the server hung up
// without one).
func slowBody(t *testing.T, base string, body []byte, chunk int, pause time.Duration) (int, error) {
	t.Helper()
	c := dial(t, base)
	hdr := "POST /vss/putObjects HTTP/1.1\r\nHost: vss\r\nContent-Type: application/octet-stream\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := io.WriteString(c, hdr); err != nil {
		return 0, err
	}
	for len(body) > 0 {
		n := min(chunk, len(body))
		if _, err := c.Write(body[:n]); err != nil {
			return 0, err
		}
		body = body[n:]
		if len(body) > 0 {
			time.Sleep(pause)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func TestSlowBodyAboveTheMinimumRateCompletes(t *testing.T) {
	t.Parallel()
	// At least 16 KiB per second; the body comes at 64 KiB/s and takes about 4 s, longer
	// than the write timeout, which runs from the end of the body.
	base := start(t, Config{Auth: AuthConfig{Schemes: "none"}, Limits: LimitsConfig{
		BodyProgressBytes: 16 << 10, BodyProgressTimeout: time.Second, WriteTimeout: 2 * time.Second,
	}})
	body := putBody(t, "big", 256<<10)
	began := time.Now()
	status, err := slowBody(t, base, body, 8<<10, 125*time.Millisecond)
	if err != nil || status != http.StatusOK {
		t.Fatalf("slow upload of %d bytes: status %d, %v; want 200", len(body), status, err)
	}
	if d := time.Since(began); d < 3*time.Second {
		t.Fatalf("the upload took %v: too fast to test anything", d)
	}
	var got vssv1.GetObjectResponse
	if st, e := legacyCall(t, base, "getObject", "", &vssv1.GetObjectRequest{StoreId: "s", Key: "big"}, &got); st != 200 || len(got.GetValue().GetValue()) != 256<<10 {
		t.Fatalf("reading the uploaded value back: %d %v, %d bytes", st, e, len(got.GetValue().GetValue()))
	}
}

func TestStalledBodyIsCutOff(t *testing.T) {
	t.Parallel()
	base := start(t, Config{Auth: AuthConfig{Schemes: "none"}, Limits: LimitsConfig{
		BodyProgressBytes: 16 << 10, BodyProgressTimeout: time.Second,
	}})
	c := dial(t, base)
	body := putBody(t, "stalled", 100<<10)
	hdr := "POST /vss/putObjects HTTP/1.1\r\nHost: vss\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := c.Write(append([]byte(hdr), body[:1000]...)); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if !closedWithin(c, 5*time.Second) {
		t.Fatal("a stalled body was not cut off within 5 s (1 s allowed without progress)")
	}
	if d := time.Since(began); d < 900*time.Millisecond {
		t.Errorf("the stalled body was cut after %v, before its 1 s allowance", d)
	}
	fams := scrape(t, base)
	if got := counterValue(t, fams, "vss_body_progress_cutoffs_total", nil); got != 1 {
		t.Errorf("vss_body_progress_cutoffs_total = %v, want 1", got)
	}
	if st, _ := legacyCall(t, base, "getObject", "", &vssv1.GetObjectRequest{StoreId: "s", Key: "stalled"}, nil); st != http.StatusNotFound {
		t.Errorf("the cut-off write was stored: get status %d, want 404", st)
	}
	checkServing(t, base)
}

func TestIdleKeepAliveConnectionsDoNotBlockOthers(t *testing.T) {
	t.Parallel()
	// Far fewer request slots than idle connections: an idle connection holds none.
	// They all come from 127.0.0.1, more than one address may hold by default.
	base := start(t, Config{Auth: AuthConfig{Schemes: "none"}, Limits: LimitsConfig{MaxConcurrent: 8, MaxConnectionsPerAddress: 2000}})
	const idle = 1000
	for i := range idle {
		c := dial(t, base)
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: vss\r\n\r\n"); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("connection %d: %v %v", i, res, err)
		}
		res.Body.Close()
		if res.Close {
			t.Fatalf("connection %d: the server did not keep the connection alive", i)
		}
	}
	began := time.Now()
	for range 20 {
		checkServing(t, base)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("20 checks with %d idle connections open took %v", idle, d)
	}
}

func TestOversizedHeadersGet431(t *testing.T) {
	t.Parallel()
	base := start(t, Config{Auth: AuthConfig{Schemes: "none"}, Limits: LimitsConfig{MaxHeaderBytes: 8 << 10}})
	req, _ := http.NewRequest(http.MethodPost, base+"/vss/getObject", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of headers: status %d, want 431", res.StatusCode)
	}
	checkServing(t, base)
}

func TestConcurrencyCapRefusesWhenSaturated(t *testing.T) {
	t.Parallel()
	base := start(t, Config{Auth: AuthConfig{Schemes: "none"}, Limits: LimitsConfig{
		MaxConcurrent: 2, QueueTimeout: 200 * time.Millisecond, BodyProgressTimeout: 30 * time.Second,
	}})
	// Two uploads that send their headers and part of their body, then wait: each holds
	// a request slot until released.
	release := make(chan struct{})
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i := range 2 {
		c := dial(t, base)
		body := putBody(t, "held"+strconv.Itoa(i), 1000)
		hdr := "POST /vss/putObjects HTTP/1.1\r\nHost: vss\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
		if _, err := c.Write(append([]byte(hdr), body[:10]...)); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			if _, err := c.Write(body[10:]); err != nil {
				return
			}
			if res, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				statuses[i] = res.StatusCode
				res.Body.Close()
			}
		}()
	}
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	// Wait until both hold their slot, as the in-flight gauge (metrics have slots apart from
	// the cap) shows.
	deadline := time.Now().Add(10 * time.Second)
	for counterValue(t, scrape(t, base), server.MetricInFlight, nil) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the two held requests never got in flight")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The VSS HTTP API: 503, Retry-After, the protocol header, INTERNAL_SERVER_EXCEPTION.
	res, err := http.Post(base+"/vss/getObject", "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var e vssv1.ErrorResponse
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
		res.Header.Get(server.ProtocolVersionHeader) != server.ProtocolVersion ||
		proto.Unmarshal(data, &e) != nil || e.GetErrorCode() != vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION {
		t.Errorf("VSS HTTP API over the cap: status %d, headers %v, body %v; want 503, Retry-After, %s, INTERNAL_SERVER_EXCEPTION",
			res.StatusCode, res.Header, &e, server.ProtocolVersionHeader)
	}
	// Connect and gRPC: unavailable.
	for name, opts := range map[string][]connect.ClientOption{"connect": nil, "grpc": {connect.WithGRPC()}} {
		c := vssv1connect.NewVssServiceClient(h2c(), base, opts...)
		_, err := c.GetObject(context.Background(), connect.NewRequest(&vssv1.GetObjectRequest{Key: "k"}))
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("%s over the cap: %v, want unavailable", name, err)
		}
	}
	// Health checks and metrics have slots of their own.
	if res, _ := do(t, http.MethodGet, base+"/healthz", nil); res.StatusCode != http.StatusOK {
		t.Errorf("healthz over the cap: %d", res.StatusCode)
	}
	if res, _ := do(t, http.MethodGet, base+"/readyz", nil); res.StatusCode != http.StatusOK {
		t.Errorf("readyz over the cap: %d", res.StatusCode)
	}
	if got := counterValue(t, scrape(t, base), server.MetricOverloadRefusals, map[string]string{"reason": "server"}); got != 3 {
		t.Errorf("%s = %v, want 3", server.MetricOverloadRefusals, got)
	}

	close(release)
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusOK {
			t.Errorf("held request %d: status %d, want 200", i, st)
		}
	}
	checkServing(t, base)
}

func TestOversizedBodyGets413WithTheProtocolHeader(t *testing.T) {
	t.Parallel()
	base := start(t, Config{Auth: AuthConfig{Schemes: "none"}, MaxBodyBytes: 64 << 10})
	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(putBody(t, "big", 100<<10))
		if chunked {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
		res, err := http.Post(base+"/vss/putObjects", "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var e vssv1.ErrorResponse
		if res.StatusCode != http.StatusRequestEntityTooLarge || res.Header.Get(server.ProtocolVersionHeader) != server.ProtocolVersion ||
			proto.Unmarshal(data, &e) != nil || e.GetErrorCode() != vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION {
			t.Errorf("100 KiB body over a 64 KiB limit (chunked %v): status %d, headers %v, body %v; want 413, %s, INVALID_REQUEST_EXCEPTION",
				chunked, res.StatusCode, res.Header, &e, server.ProtocolVersionHeader)
		}
	}
	checkServing(t, base)
}
