package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// Memory is what the memory probes measured on a freshly started server.
type Memory struct {
	Store string `json:"store"`
	// StartRSSMB is the server's RSS before the probes.
	StartRSSMB float64 `json:"start_rss_mb"`
	// LargePutBytes is the value size of the single large PutObjects.
	LargePutBytes int64 `json:"large_put_bytes"`
	// HWMBeforeMB and HWMAfterMB are the peak RSS just before and after it.
	HWMBeforeMB float64 `json:"hwm_before_mb"`
	HWMAfterMB  float64 `json:"hwm_after_mb"`
	// LargePutRaiseX is the peak RSS raise divided by the value size.
	LargePutRaiseX float64 `json:"large_put_raise_x"`
	// IdleConns is how many keep-alive connections were open, each after one request.
	IdleConns int `json:"idle_conns"`
	// IdleRSSMB is the server's RSS with them open; IdleBeforeMB just before they opened.
	IdleBeforeMB float64 `json:"idle_before_mb"`
	IdleRSSMB    float64 `json:"idle_rss_mb"`
}

const mb = 1 << 20

// probeMemory measures, on a server that has served nothing yet, how much one
// PutObjects of size bytes raises the peak RSS, and the RSS with conns idle
// keep-alive connections.
func probeMemory(ctx context.Context, store string, c *child, w *wallet, size int, conns int) (Memory, error) {
	m := Memory{Store: store, LargePutBytes: int64(size), IdleConns: conns}
	pid := c.pid()
	rss, _, err := procMem(pid)
	if err != nil {
		return m, err
	}
	m.StartRSSMB = float64(rss) / mb
	hc := newHTTPClient(1, &counters{})
	cl := &vssHTTP{base: c.root + "/vss", hc: hc}
	// One small request first, so that the raise is the large value's alone.
	if err := cl.put(ctx, w, "memory", []*vssv1.KeyValue{{Key: "warm", Version: -1, Value: []byte("x")}}); err != nil {
		return m, err
	}
	_ = resetHWM(pid) // best effort: VmHWM is the peak since start otherwise
	time.Sleep(100 * time.Millisecond)
	_, hwm0, _ := procMem(pid)
	val := make([]byte, size)
	for i := range val {
		val[i] = byte(i * 7)
	}
	if err := cl.put(ctx, w, "memory", []*vssv1.KeyValue{{Key: "large", Version: -1, Value: val}}); err != nil {
		return m, err
	}
	_, hwm1, _ := procMem(pid)
	m.HWMBeforeMB, m.HWMAfterMB = float64(hwm0)/mb, float64(hwm1)/mb
	m.LargePutRaiseX = float64(hwm1-hwm0) / float64(size)
	hc.CloseIdleConnections()

	// Idle keep-alive connections: one GetObject on each, then leave them open.
	body, _ := proto.Marshal(&vssv1.GetObjectRequest{StoreId: "memory", Key: "warm"})
	req := fmt.Sprintf("POST /vss/getObject HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n",
		strings.TrimPrefix(c.root, "http://"), w.auth(), len(body))
	time.Sleep(200 * time.Millisecond)
	rss, _, _ = procMem(pid)
	m.IdleBeforeMB = float64(rss) / mb
	open := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range open {
			_ = c.Close()
		}
	}()
	for range conns {
		conn, err := net.Dial("tcp", strings.TrimPrefix(c.root, "http://"))
		if err != nil {
			return m, fmt.Errorf("idle connection %d: %w", len(open), err)
		}
		open = append(open, conn)
		if _, err := io.WriteString(conn, req); err != nil {
			return m, err
		}
		if _, err := conn.Write(body); err != nil {
			return m, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return m, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return m, fmt.Errorf("idle connection probe: HTTP %d", resp.StatusCode)
		}
	}
	time.Sleep(time.Second)
	rss, _, _ = procMem(pid)
	m.IdleRSSMB = float64(rss) / mb
	return m, nil
}
