package faulttest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// TestUnauthenticatedFloodLeavesVSSAlone floods everything the server answers without
// credentials while a bystander writes and reads back: silent HTTP/2 streams (HEADERS
// without END_STREAM, then nothing) at the gRPC reflection and health services, silent
// HTTP/1 requests (a Content-Length, then no body) at the health service, and busy
// loops at /healthz, /readyz, /metrics, LNURL-auth and the explorer's files. Those
// endpoints have request slots of their own, so the bystander's VSS calls never find
// the server busy; every silent stream and request ends once --body-progress-timeout
// has passed (or at once, refused).
func TestUnauthenticatedFloodLeavesVSSAlone(t *testing.T) {
	const progressTimeout = 2 * time.Second
	srv := startServer(t, "--database-url", "memory:", "--auth", "signature,jwt", "--lnurl-auth", "--public-url", "http://127.0.0.1",
		"--explorer", "--max-concurrent-requests", "100", "--body-progress-timeout", progressTimeout.String())
	ctx := testContext(t, 2*time.Minute)
	by := newBystander(t, srv, nil)
	by.start(ctx)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var st floodStats
	// Silent HTTP/2 streams: 3 connections of 200 streams, each stream replaced by a new
	// one as soon as the server ends it.
	paths := []h2path{
		{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "application/grpc"},
		{"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "application/grpc"},
		{"/grpc.health.v1.Health/Check", "application/grpc"},
		{"/grpc.health.v1.Health/Watch", "application/grpc"},
	}
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); silentStreams(t, srv.addr, 200, paths[i%2:], stop, &st) }()
	}
	// Silent HTTP/1 requests: 150 connections that send headers and no body.
	for range 150 {
		wg.Add(1)
		go func() { defer wg.Done(); silentRequest(srv.addr, stop, &st) }()
	}
	// Busy loops at the other endpoints without credentials.
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			publicLoop(srv.url(), []string{"/healthz", "/readyz", "/metrics", "/auth/lnurl", "/explorer/"}[i%5], stop, &st)
		}()
	}

	time.Sleep(4 * progressTimeout)
	close(stop)
	wg.Wait()
	by.finish(t, srv, "unauthenticated flood", 0.01)
	t.Logf("silent HTTP/2 streams: %d opened, %d ended (%d refused at once, %d reset), longest %v; "+
		"silent HTTP/1 requests: %d sent, %d ended, longest %v; public requests: %d ok, %d refused (503)",
		st.streams.Load(), st.streamsEnded.Load(), st.streamsRefused.Load(), st.streamsReset.Load(), time.Duration(st.longestStream.Load()),
		st.silent.Load(), st.silentEnded.Load(), time.Duration(st.longestSilent.Load()), st.publicOK.Load(), st.public503.Load())
	if st.streams.Load() < 600 || st.silent.Load() < 150 {
		t.Errorf("the flood did not run: %d streams, %d silent requests", st.streams.Load(), st.silent.Load())
	}
	// Every silent stream and request that ended did so within a few seconds of the
	// minimum-rate timeout; the ones still open at the end were opened in its last period.
	if d := time.Duration(st.longestStream.Load()); d > progressTimeout+3*time.Second {
		t.Errorf("a silent HTTP/2 stream lived %v, want it cut within %v of --body-progress-timeout %v", d, 3*time.Second, progressTimeout)
	}
	if d := time.Duration(st.longestSilent.Load()); d > progressTimeout+3*time.Second {
		t.Errorf("a silent HTTP/1 request lived %v, want it cut within %v of --body-progress-timeout %v", d, 3*time.Second, progressTimeout)
	}
	// Admitted silent streams are cut one by one, their connection living on (a refusal
	// of one stream must not end the connection's others).
	if cut := st.streamsEnded.Load() - st.streamsRefused.Load(); cut == 0 {
		t.Errorf("no admitted silent HTTP/2 stream was cut on its own (%d ended, all refused at once)", st.streamsEnded.Load())
	}
	if st.streamsEnded.Load() == 0 || st.silentEnded.Load() == 0 {
		t.Errorf("the server ended no silent stream (%d) or no silent request (%d)", st.streamsEnded.Load(), st.silentEnded.Load())
	}
}

// TestOneUserSlowUploadsLeaveOthersAlone: one identity (one signature key) keeps 200
// uploads going, each sending its body one byte every 100 ms (just above the minimum
// rate the server is given), over the VSS HTTP API and Connect on HTTP/1.1 and over
// gRPC on HTTP/2, and starts a new one whenever one ends. The user holds at most its
// share of the request slots, so another user's writes keep succeeding.
func TestOneUserSlowUploadsLeaveOthersAlone(t *testing.T) {
	srv := startServer(t, "--database-url", "memory:", "--auth", "signature", "--max-concurrent-requests", "100",
		"--body-progress-bytes", "4", "--body-progress-timeout", "1s")
	ctx := testContext(t, 2*time.Minute)
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	auth := signer(key)
	body, err := proto.Marshal(&vssv1.PutObjectRequest{StoreId: "mallory",
		TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1, Value: bytes.Repeat([]byte{'m'}, 200)}}})
	if err != nil {
		t.Fatal(err)
	}
	by := newBystander(t, srv, nil)
	by.start(ctx)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var st uploadStats
	for i := range 150 {
		path, ct := "/vss/putObjects", "application/octet-stream"
		if i%2 == 1 {
			path, ct = "/vss.v1.VssService/PutObjects", "application/proto"
		}
		wg.Add(1)
		go func() { defer wg.Done(); slowUploads(srv.addr, path, ct, auth, body, stop, &st) }()
	}
	// gRPC on HTTP/2: 50 streams on one connection, each dribbling a framed message.
	grpcBody := append([]byte{0, 0, 0, 0, 0}, body...)
	grpcBody[1], grpcBody[2], grpcBody[3], grpcBody[4] = byte(len(body)>>24), byte(len(body)>>16), byte(len(body)>>8), byte(len(body))
	wg.Add(1)
	go func() { defer wg.Done(); slowStreams(t, srv.addr, 50, auth, grpcBody, stop, &st) }()

	time.Sleep(8 * time.Second)
	close(stop)
	wg.Wait()
	by.finish(t, srv, "one user's slow uploads", 0.01)
	t.Logf("mallory: %d uploads started, %d refused at once (503/unavailable), %d accepted (200 after the whole dribbled body), %d ended otherwise",
		st.started.Load(), st.refused.Load(), st.ok.Load(), st.other.Load())
	if st.started.Load() < 200 {
		t.Errorf("the attack did not run: %d uploads", st.started.Load())
	}
}

type floodStats struct {
	streams, streamsEnded, streamsRefused, streamsReset atomic.Int64
	longestStream                                       atomic.Int64
	silent, silentEnded                                 atomic.Int64
	longestSilent                                       atomic.Int64
	publicOK, public503                                 atomic.Int64
}

type uploadStats struct {
	started, refused, ok, other atomic.Int64
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

type h2path struct{ path, contentType string }

// h2conn is a raw HTTP/2 cleartext client connection, to send what a well-behaved
// client never does.
type h2conn struct {
	conn net.Conn
	fr   *http2.Framer
	mu   sync.Mutex // serializes writes
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	next uint32
}

// dialH2 connects with prior knowledge and sends the preface and SETTINGS.
func dialH2(addr string) (*h2conn, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		conn.Close()
		return nil, err
	}
	c := &h2conn{conn: conn, fr: http2.NewFramer(conn, conn), next: 1}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	if err := c.fr.WriteSettings(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// open sends HEADERS for a POST to path without END_STREAM and returns the stream id.
func (c *h2conn) open(path, contentType string, extra ...string) (uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hbuf.Reset()
	fields := append([]string{":method", "POST", ":scheme", "http", ":authority", "vss", ":path", path,
		"content-type", contentType, "te", "trailers"}, extra...)
	for i := 0; i < len(fields); i += 2 {
		_ = c.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	id := c.next
	c.next += 2
	return id, c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
}

func (c *h2conn) data(id uint32, b []byte, end bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fr.WriteData(id, end, b)
}

// h2end is how the server ended a stream: the response's :status (0 if none came), its
// grpc-status (empty if none), and whether the end was a RST_STREAM.
type h2end struct {
	status     int
	grpcStatus string
	reset      bool
}

// refused reports whether the server refused the stream for want of a request slot.
func (e h2end) refused() bool {
	return e.status == http.StatusServiceUnavailable || e.grpcStatus == "14" // unavailable
}

// readLoop reads frames until the connection fails, acknowledges SETTINGS, returns
// flow-control credit, and calls ended once per stream the server ends.
func (c *h2conn) readLoop(ended func(id uint32, e h2end)) error {
	statuses := map[uint32]h2end{}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return err
		}
		c.mu.Lock()
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = c.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = c.fr.WritePing(true, f.Data)
			}
		case *http2.DataFrame:
			if n := uint32(len(f.Data())); n > 0 {
				_ = c.fr.WriteWindowUpdate(0, n)
			}
		}
		c.mu.Unlock()
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			e := statuses[f.StreamID]
			if s := f.PseudoValue("status"); s != "" {
				e.status, _ = strconv.Atoi(s)
			}
			for _, hf := range f.RegularFields() {
				if hf.Name == "grpc-status" {
					e.grpcStatus = hf.Value
				}
			}
			statuses[f.StreamID] = e
			if f.StreamEnded() {
				ended(f.StreamID, e)
				delete(statuses, f.StreamID)
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				ended(f.StreamID, statuses[f.StreamID])
				delete(statuses, f.StreamID)
			}
		case *http2.RSTStreamFrame:
			e := statuses[f.StreamID]
			e.reset = true
			ended(f.StreamID, e)
			delete(statuses, f.StreamID)
		case *http2.GoAwayFrame:
			return fmt.Errorf("GOAWAY %v", f.ErrCode)
		}
	}
}

// silentStreams keeps n silent streams open on one connection at paths (in turn) until
// stop, replacing each one the server ends, and records how long each lived.
func silentStreams(t *testing.T, addr string, n int, paths []h2path, stop <-chan struct{}, st *floodStats) {
	c, err := dialH2(addr)
	if err != nil {
		t.Errorf("h2c: %v", err)
		return
	}
	defer c.conn.Close()
	var mu sync.Mutex
	opened := map[uint32]time.Time{}
	replace := make(chan struct{}, n)
	go func() {
		_ = c.readLoop(func(id uint32, e h2end) {
			mu.Lock()
			start, ok := opened[id]
			delete(opened, id)
			mu.Unlock()
			if !ok {
				return // a response after our own reset, or a stream ended twice
			}
			st.streamsEnded.Add(1)
			storeMax(&st.longestStream, int64(time.Since(start)))
			switch {
			case e.refused():
				st.streamsRefused.Add(1)
			case e.reset && e.status == 0:
				st.streamsReset.Add(1)
			}
			replace <- struct{}{}
		})
		close(replace)
	}()
	for i := range n {
		p := paths[i%len(paths)]
		mu.Lock()
		id, err := c.open(p.path, p.contentType)
		opened[id] = time.Now()
		mu.Unlock()
		if err != nil {
			return
		}
		st.streams.Add(1)
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case _, ok := <-replace:
			if !ok {
				return
			}
			time.Sleep(5 * time.Millisecond) // a slower attacker, so the load stays bounded
			p := paths[i%len(paths)]
			mu.Lock()
			id, err := c.open(p.path, p.contentType)
			opened[id] = time.Now()
			mu.Unlock()
			if err != nil {
				return
			}
			st.streams.Add(1)
		}
	}
}

// silentRequest sends, over and over until stop, a health check over HTTP/1.1 with a
// Content-Length and no body, and records how long the server takes to end it.
func silentRequest(addr string, stop <-chan struct{}, st *floodStats) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		start := time.Now()
		_, err = io.WriteString(conn, "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: vss\r\nContent-Type: application/proto\r\nContent-Length: 100\r\n\r\n")
		if err == nil {
			st.silent.Add(1)
			done := make(chan struct{})
			go func() {
				select {
				case <-stop:
					conn.Close()
				case <-done:
				}
			}()
			// The server answers (refused, or cut off after the timeout) or hangs up.
			_, _ = http.ReadResponse(bufio.NewReader(conn), nil)
			close(done)
			select {
			case <-stop:
			default:
				st.silentEnded.Add(1)
				storeMax(&st.longestSilent, int64(time.Since(start)))
			}
		}
		conn.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

// publicLoop GETs path until stop.
func publicLoop(base, path string, stop <-chan struct{}, st *floodStats) {
	hc := newHTTPClient(10 * time.Second)
	for {
		select {
		case <-stop:
			return
		default:
		}
		res, err := hc.Get(base + path)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusServiceUnavailable {
				st.public503.Add(1)
			} else {
				st.publicOK.Add(1)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// slowUploads posts body to path over HTTP/1.1 one byte every 100 ms, over and over
// until stop; a refused upload is retried after 200 ms.
func slowUploads(addr, path, contentType string, auth func() string, body []byte, stop <-chan struct{}, st *uploadStats) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		st.started.Add(1)
		status := make(chan int, 1)
		go func() {
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				status <- 0
				return
			}
			res.Body.Close()
			status <- res.StatusCode
		}()
		hdr := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: vss\r\nContent-Type: %s\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n",
			path, contentType, auth(), len(body))
		code := -1
		if _, err := io.WriteString(conn, hdr); err == nil {
		dribble:
			for i := range body {
				select {
				case <-stop:
					break dribble
				case code = <-status:
					break dribble
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := conn.Write(body[i : i+1]); err != nil {
					break
				}
			}
		}
		if code == -1 {
			select {
			case code = <-status:
			case <-stop:
			}
		}
		conn.Close()
		switch code {
		case http.StatusServiceUnavailable:
			st.refused.Add(1)
		case http.StatusOK:
			st.ok.Add(1)
		case -1:
		default:
			st.other.Add(1)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// slowStreams keeps n gRPC PutObjects streams on one HTTP/2 connection, each sending
// its framed message one byte every 100 ms, replacing each one the server ends.
func slowStreams(t *testing.T, addr string, n int, auth func() string, msg []byte, stop <-chan struct{}, st *uploadStats) {
	c, err := dialH2(addr)
	if err != nil {
		t.Errorf("h2c: %v", err)
		return
	}
	defer c.conn.Close()
	var mu sync.Mutex
	sent := map[uint32]int{} // bytes sent per open stream
	go func() {
		_ = c.readLoop(func(id uint32, e h2end) {
			mu.Lock()
			defer mu.Unlock()
			if _, ok := sent[id]; !ok {
				return
			}
			delete(sent, id)
			switch {
			case e.refused():
				st.refused.Add(1)
			case e.status == http.StatusOK && e.grpcStatus == "0":
				st.ok.Add(1)
			default:
				st.other.Add(1)
			}
		})
	}()
	openOne := func() {
		id, err := c.open("/vss.v1.VssService/PutObjects", "application/grpc", "authorization", auth())
		if err == nil {
			sent[id] = 0
			st.started.Add(1)
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		mu.Lock()
		for len(sent) < n {
			openOne()
		}
		for id, k := range sent {
			if k < len(msg) {
				_ = c.data(id, msg[k:k+1], k == len(msg)-1)
				sent[id] = k + 1
			}
		}
		mu.Unlock()
	}
}
