package faulttest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// maxRSSGrowthAnonymous and maxRSSGrowth are the documented bounds (README, Limits) on
// how far compressed bombs may raise the server's peak RSS above what it used before:
// requests without credentials never hold more than SmallBodyBytes of a message, and an
// authenticated request at most its compressed body and its message up to the body limit
// (4 MiB in the test; with buffer growth and the garbage collector's slack about 5 times
// that), whatever the bomb would inflate to. The test sends the 9 authenticated bombs at
// once: 9 × 20 MiB.
const (
	maxRSSGrowthAnonymous = 32 << 20
	maxRSSGrowth          = 9 * 20 << 20
)

// gzipZeros returns gzip of n zero bytes: about n/1000 bytes that inflate to n.
func gzipZeros(n int64) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(zeros)) {
		_, _ = zw.Write(zeros[:min(left, int64(len(zeros)))])
	}
	_ = zw.Close()
	return buf.Bytes()
}

var (
	// bigBomb inflates to 1 GiB from about 1 MiB: past every limit, compressed and not.
	bigBomb = sync.OnceValue(func() []byte { return gzipZeros(1 << 30) })
	// smallBomb is under the small services' compressed limit and inflates to 16 MiB.
	smallBomb = sync.OnceValue(func() []byte { return gzipZeros(16 << 20) })
)

// envelope frames a message as gRPC, gRPC-Web and Connect streaming do.
func envelope(compressed bool, msg []byte) []byte {
	out := make([]byte, 5, 5+len(msg))
	if compressed {
		out[0] = 1
	}
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// bombCase is one request that carries a compressed bomb (or an oversized body).
type bombCase struct {
	name   string
	h2c    bool // send over cleartext HTTP/2 (gRPC)
	method string
	path   string
	header map[string]string
	body   func() []byte
	auth   bool
	// raw sends the request over a raw TCP connection, reading the answer while the body
	// is still being written: the body-less routes answer before reading the body and
	// close the connection, which an HTTP client reports as a failed write.
	raw bool
}

// answer is what the server said: the HTTP status and, for gRPC, the grpc-status.
type answer struct {
	status     int
	grpcStatus string
	body       string
}

func (a answer) String() string {
	if a.grpcStatus != "" {
		return fmt.Sprintf("HTTP %d grpc-status %s", a.status, a.grpcStatus)
	}
	return fmt.Sprintf("HTTP %d %.80q", a.status, a.body)
}

// refused reports whether a is a refusal that did not decode the message: a 4xx, or the
// protocol's resource_exhausted (8), invalid_argument (3) or, for a compression the
// server does not support, unimplemented (12; HTTP 501 for Connect unary, as the Connect
// protocol prescribes).
func (a answer) refused() bool {
	switch {
	case a.grpcStatus != "":
		return a.grpcStatus == "8" || a.grpcStatus == "3" || a.grpcStatus == "12"
	case a.status == http.StatusNotImplemented:
		return strings.Contains(a.body, `"unimplemented"`)
	}
	return a.status >= 400 && a.status < 500
}

func send(ctx context.Context, c bombCase, base string, auth func() string, h1, h2 *http.Client) (answer, error) {
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body())
	}
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	if c.raw {
		return sendRaw(ctx, method, base, c)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+c.path, body)
	if err != nil {
		return answer{}, err
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	if c.auth {
		req.Header.Set("Authorization", auth())
	}
	hc := h1
	if c.h2c {
		hc = h2
	}
	res, err := hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	_, _ = io.Copy(io.Discard, res.Body)
	a := answer{status: res.StatusCode, body: string(data), grpcStatus: res.Header.Get("Grpc-Status")}
	if a.grpcStatus == "" {
		a.grpcStatus = res.Trailer.Get("Grpc-Status")
	}
	if a.grpcStatus == "" && strings.HasPrefix(res.Header.Get("Content-Type"), "application/grpc-web") {
		// gRPC-Web sends its trailers as the last frame of the body.
		if i := strings.Index(a.body, "grpc-status:"); i >= 0 {
			a.grpcStatus = strings.TrimSpace(strings.SplitN(a.body[i+len("grpc-status:"):], "\r\n", 2)[0])
		}
	}
	return a, nil
}

// TestCompressedBombs sends gzip bombs (about 1 MiB inflating to 1 GiB, and 16 KiB
// inflating to 16 MiB), bodies compressed with an encoding the server does not accept,
// and oversized plain bodies to every endpoint that could read a body: the VSS HTTP API,
// VSS over Connect (unary, and GET), gRPC and gRPC-Web, the gRPC health service, gRPC
// reflection (turned on), LNURL-auth, /metrics, /healthz and /readyz. Each is refused
// without being decoded, while a bystander keeps writing; the server's peak RSS stays
// within maxRSSGrowth of what it was before the attack.
func TestCompressedBombs(t *testing.T) {
	t.Setenv("VSS_GRPC_REFLECTION", "true")
	srv := startServer(t, "--database-url", "memory:", "--auth", "signature,jwt", "--lnurl-auth",
		"--public-url", "https://vss.example.com", "--max-body-bytes", fmt.Sprint(4<<20))
	ctx := testContext(t, 4*time.Minute)
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	auth := signer(key)
	h1, h2 := newHTTPClient(60*time.Second), h2cClient(60*time.Second)
	big, small := bigBomb(), smallBomb()
	t.Logf("bombs: %d bytes of gzip inflating to 1 GiB, %d bytes inflating to 16 MiB", len(big), len(small))
	raw := func(b []byte) func() []byte { return func() []byte { return b } }
	env := func(b []byte) func() []byte { return func() []byte { return envelope(true, b) } }
	plainEnv := func(n int) func() []byte { return func() []byte { return envelope(false, make([]byte, n)) } }
	gz := map[string]string{"Content-Encoding": "gzip"}
	proto := func(h map[string]string) map[string]string {
		out := map[string]string{"Content-Type": "application/proto"}
		for k, v := range h {
			out[k] = v
		}
		return out
	}
	grpc := map[string]string{"Content-Type": "application/grpc", "Grpc-Encoding": "gzip", "Te": "trailers"}
	grpcWeb := map[string]string{"Content-Type": "application/grpc-web+proto", "Grpc-Encoding": "gzip"}
	const put, health, reflect = "/vss.v1.VssService/PutObjects", "/grpc.health.v1.Health/Check",
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
	healthGet := "/grpc.health.v1.Health/Check?encoding=proto&compression=gzip&base64=1&message=" +
		url.QueryEscape(base64.URLEncoding.EncodeToString(gzipZeros(8<<20)))
	cases := []bombCase{
		// The VSS HTTP API reads bodies as they are: no decompression.
		{name: "VSS HTTP API, Content-Encoding gzip", path: "/vss/putObjects", header: gz, body: raw(big), auth: true},
		{name: "VSS HTTP API, Content-Encoding deflate", path: "/vss/getObject", header: map[string]string{"Content-Encoding": "deflate"}, body: raw(small), auth: true},
		{name: "VSS HTTP API, unauthenticated", path: "/vss/putObjects", header: gz, body: raw(big)},
		// VSS over Connect, gRPC and gRPC-Web: gzip accepted up to the body limit.
		{name: "Connect unary gzip", path: put, header: proto(gz), body: raw(big), auth: true},
		{name: "Connect unary deflate", path: put, header: proto(map[string]string{"Content-Encoding": "deflate"}), body: raw(small), auth: true},
		{name: "Connect unary identity, oversized", path: put, header: proto(nil), body: raw(make([]byte, 6<<20)), auth: true},
		{name: "Connect GET gzip", method: http.MethodGet, path: "/vss.v1.VssService/GetObject?encoding=proto&compression=gzip&base64=1&message=" +
			url.QueryEscape(base64.URLEncoding.EncodeToString(gzipZeros(16<<20))), auth: true},
		{name: "gRPC per-message gzip", h2c: true, path: put, header: grpc, body: env(big), auth: true},
		{name: "gRPC, envelope of 4 GiB declared", h2c: true, path: put, header: grpc,
			body: func() []byte { return append([]byte{0, 0xff, 0xff, 0xff, 0xff}, make([]byte, 1<<20)...) }, auth: true},
		{name: "gRPC-Web per-message gzip", path: put, header: grpcWeb, body: env(big), auth: true},
		// The unauthenticated services: small limits.
		{name: "health, Connect gzip 1 GiB", path: health, header: proto(gz), body: raw(big)},
		{name: "health, Connect gzip 16 MiB", path: health, header: proto(gz), body: raw(small)},
		{name: "health, Connect identity 8 MiB", path: health, header: proto(nil), body: raw(make([]byte, 8<<20))},
		{name: "health, Connect GET gzip", method: http.MethodGet, path: healthGet},
		{name: "health, gRPC gzip 1 GiB", h2c: true, path: health, header: grpc, body: env(big)},
		{name: "health, gRPC gzip 16 MiB", h2c: true, path: health, header: grpc, body: env(small)},
		{name: "health, gRPC identity 8 MiB", h2c: true, path: health, header: map[string]string{"Content-Type": "application/grpc", "Te": "trailers"}, body: plainEnv(8 << 20)},
		{name: "health, gRPC-Web gzip 16 MiB", path: health, header: grpcWeb, body: env(small)},
		{name: "reflection, gRPC gzip 1 GiB", h2c: true, path: reflect, header: grpc, body: env(big)},
		{name: "reflection, gRPC gzip 16 MiB", h2c: true, path: reflect, header: grpc, body: env(small)},
		// Routes that take no body.
		{name: "LNURL-auth with a gzip body", raw: true, method: http.MethodGet, path: "/auth/lnurl", header: gz, body: raw(big)},
		{name: "LNURL-auth verify with a body", raw: true, method: http.MethodGet, path: "/auth/lnurl/verify?tag=login", header: gz, body: raw(small)},
		{name: "/metrics with a body", raw: true, method: http.MethodGet, path: "/metrics", header: gz, body: raw(big)},
		{name: "/healthz with a body", raw: true, method: http.MethodGet, path: "/healthz", header: gz, body: raw(big)},
		{name: "/readyz with a body", raw: true, method: http.MethodPost, path: "/readyz", body: raw(big)},
	}

	b := newBystander(t, srv, nil)
	b.start(ctx)
	var failed []string
	var mu sync.Mutex
	// First the requests without credentials, then the authenticated ones, each case
	// three times and all cases at once: each phase's growth of the peak RSS is printed and
	// bounded.
	for _, phase := range []struct {
		name  string
		auth  bool
		bound int64
	}{{"without credentials", false, maxRSSGrowthAnonymous}, {"authenticated", true, maxRSSGrowth}} {
		before := srv.peakRSS(t)
		var wg sync.WaitGroup
		for _, c := range cases {
			if c.auth != phase.auth {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := range 3 {
					start := time.Now()
					a, err := send(ctx, c, srv.url(), auth, h1, h2)
					mu.Lock()
					switch {
					case err != nil:
						failed = append(failed, fmt.Sprintf("%s: %v", c.name, err))
					case !a.refused():
						failed = append(failed, fmt.Sprintf("%s: answered %v, want a refusal", c.name, a))
					case round == 0:
						t.Logf("%-40s %v in %v", c.name, a, time.Since(start).Round(time.Millisecond))
					}
					mu.Unlock()
					if !srv.alive() {
						return
					}
				}
			}()
		}
		wg.Wait()
		if !srv.alive() {
			t.Fatalf("the server died under the bombs %s", phase.name)
		}
		after := srv.peakRSS(t)
		t.Logf("bombs %s: peak RSS before %.1f MiB, after %.1f MiB: grew by %.1f MiB (bound %d MiB)", phase.name,
			float64(before)/(1<<20), float64(after)/(1<<20), float64(after-before)/(1<<20), phase.bound>>20)
		if after-before > phase.bound {
			t.Errorf("bombs %s: peak RSS grew by %d MiB, want at most %d MiB", phase.name, (after-before)>>20, phase.bound>>20)
		}
	}
	b.finish(t, srv, "compressed bombs", 0.01)
	for _, f := range failed {
		t.Error(f)
	}
}

// sendRaw sends c with its body over a raw TCP connection and reads the answer
// concurrently.
func sendRaw(ctx context.Context, method, base string, c bombCase) (answer, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		return answer{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	body := c.body()
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n", method, c.path, len(body))
	for k, v := range c.header {
		head += k + ": " + v + "\r\n"
	}
	go func() { _, _ = conn.Write(append([]byte(head+"\r\n"), body...)) }()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	return answer{status: res.StatusCode, body: string(data)}, nil
}

// h2cClient speaks cleartext HTTP/2 with prior knowledge, as gRPC clients do.
func h2cClient(timeout time.Duration) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Timeout: timeout, Transport: &http.Transport{Protocols: &p}}
}
