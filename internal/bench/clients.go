package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
	"github.com/govss/vss/storage"
)

// client is one way of reaching a VSS store: through a binding of a server, or directly.
// Every method acts as wallet w.
type client interface {
	get(ctx context.Context, w *wallet, storeID, key string) ([]byte, error)
	put(ctx context.Context, w *wallet, storeID string, items []*vssv1.KeyValue) error
	del(ctx context.Context, w *wallet, storeID, key string) error
	// list returns one page: the keys, and the next page token ("" at the end).
	list(ctx context.Context, w *wallet, storeID, token string, pageSize int32) ([]string, string, error)
}

// errFailed is a request the server answered with an error.
var errFailed = errors.New("request failed")

// counters counts the bytes a client moved on the wire (HTTP headers included).
type counters struct {
	in, out atomic.Int64 // in: to the server; out: from the server
}

// countingConn counts the bytes read and written on a connection.
type countingConn struct {
	net.Conn
	c *counters
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.c.out.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.c.in.Add(int64(n))
	return n, err
}

// newHTTPClient returns an HTTP/1.1 client that keeps up to conns connections alive to
// one host, as wallets do, and counts their bytes.
func newHTTPClient(conns int, c *counters) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &countingConn{conn, c}, nil
			},
			MaxIdleConns:        conns + 16,
			MaxIdleConnsPerHost: conns + 16,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: 2 * time.Minute,
	}
}

// vssHTTP calls the existing VSS HTTP API with raw POSTs of binary protobuf.
type vssHTTP struct {
	base string // e.g. http://127.0.0.1:8080/vss
	hc   *http.Client
}

func (c *vssHTTP) call(ctx context.Context, w *wallet, op string, req, resp proto.Message) error {
	body, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/"+op, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/octet-stream")
	hreq.Header.Set("Authorization", w.auth())
	hresp, err := c.hc.Do(hreq)
	if err != nil {
		return err
	}
	defer hresp.Body.Close()
	out, err := io.ReadAll(hresp.Body)
	if err != nil {
		return err
	}
	if hresp.StatusCode != http.StatusOK {
		var e vssv1.ErrorResponse
		_ = proto.Unmarshal(out, &e)
		return fmt.Errorf("%w: %s: HTTP %d %s %s", errFailed, op, hresp.StatusCode, e.GetErrorCode(), e.GetMessage())
	}
	return proto.Unmarshal(out, resp)
}

func (c *vssHTTP) get(ctx context.Context, w *wallet, storeID, key string) ([]byte, error) {
	var resp vssv1.GetObjectResponse
	err := c.call(ctx, w, "getObject", &vssv1.GetObjectRequest{StoreId: storeID, Key: key}, &resp)
	return resp.GetValue().GetValue(), err
}

func (c *vssHTTP) put(ctx context.Context, w *wallet, storeID string, items []*vssv1.KeyValue) error {
	return c.call(ctx, w, "putObjects", &vssv1.PutObjectRequest{StoreId: storeID, TransactionItems: items}, new(vssv1.PutObjectResponse))
}

func (c *vssHTTP) del(ctx context.Context, w *wallet, storeID, key string) error {
	return c.call(ctx, w, "deleteObject", &vssv1.DeleteObjectRequest{StoreId: storeID, KeyValue: &vssv1.KeyValue{Key: key, Version: -1}}, new(vssv1.DeleteObjectResponse))
}

func (c *vssHTTP) list(ctx context.Context, w *wallet, storeID, token string, pageSize int32) ([]string, string, error) {
	req := &vssv1.ListKeyVersionsRequest{StoreId: storeID}
	if token != "" {
		req.PageToken = &token
	}
	if pageSize > 0 {
		req.PageSize = &pageSize
	}
	var resp vssv1.ListKeyVersionsResponse
	if err := c.call(ctx, w, "listKeyVersions", req, &resp); err != nil {
		return nil, "", err
	}
	return keysOf(resp.GetKeyVersions()), resp.GetNextPageToken(), nil
}

func keysOf(kvs []*vssv1.KeyValue) []string {
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.GetKey()
	}
	return keys
}

// connectClient calls the Connect binding with the generated client and the binary codec.
type connectClient struct {
	c  vssv1connect.VssServiceClient
	hc *http.Client
}

func newConnect(root string, hc *http.Client) *connectClient {
	return &connectClient{vssv1connect.NewVssServiceClient(hc, root), hc}
}

func (c *connectClient) closeIdle() { c.hc.CloseIdleConnections() }

func (c *vssHTTP) closeIdle() { c.hc.CloseIdleConnections() }

func authed[T any](w *wallet, msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	r.Header().Set("Authorization", w.auth())
	return r
}

func (c *connectClient) get(ctx context.Context, w *wallet, storeID, key string) ([]byte, error) {
	resp, err := c.c.GetObject(ctx, authed(w, &vssv1.GetObjectRequest{StoreId: storeID, Key: key}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetValue().GetValue(), nil
}

func (c *connectClient) put(ctx context.Context, w *wallet, storeID string, items []*vssv1.KeyValue) error {
	_, err := c.c.PutObjects(ctx, authed(w, &vssv1.PutObjectRequest{StoreId: storeID, TransactionItems: items}))
	return err
}

func (c *connectClient) del(ctx context.Context, w *wallet, storeID, key string) error {
	_, err := c.c.DeleteObject(ctx, authed(w, &vssv1.DeleteObjectRequest{StoreId: storeID, KeyValue: &vssv1.KeyValue{Key: key, Version: -1}}))
	return err
}

func (c *connectClient) list(ctx context.Context, w *wallet, storeID, token string, pageSize int32) ([]string, string, error) {
	req := &vssv1.ListKeyVersionsRequest{StoreId: storeID}
	if token != "" {
		req.PageToken = &token
	}
	if pageSize > 0 {
		req.PageSize = &pageSize
	}
	resp, err := c.c.ListKeyVersions(ctx, authed(w, req))
	if err != nil {
		return nil, "", err
	}
	return keysOf(resp.Msg.GetKeyVersions()), resp.Msg.GetNextPageToken(), nil
}

// direct calls a storage.Store in this process with the arguments the service would
// pass it for the same request: the database's own limit, without HTTP, protobuf or
// authentication.
type direct struct {
	s storage.Store
}

// maxPageSize mirrors server.MaxPageSize, the page size when a request sets none.
const maxPageSize = 100

func (d *direct) get(ctx context.Context, w *wallet, storeID, key string) ([]byte, error) {
	kv, err := d.s.Get(ctx, w.user, storeID, key)
	return kv.Value, err
}

func (d *direct) put(ctx context.Context, w *wallet, storeID string, items []*vssv1.KeyValue) error {
	puts := make([]storage.KeyValue, len(items))
	for i, it := range items {
		puts[i] = storage.KeyValue{Key: it.GetKey(), Version: it.GetVersion(), Value: it.GetValue()}
	}
	return d.s.Put(ctx, w.user, storage.PutRequest{StoreID: storeID, Puts: puts})
}

func (d *direct) del(ctx context.Context, w *wallet, storeID, key string) error {
	return d.s.Delete(ctx, w.user, storeID, key, -1)
}

func (d *direct) list(ctx context.Context, w *wallet, storeID, token string, pageSize int32) ([]string, string, error) {
	req := storage.ListRequest{StoreID: storeID, Before: storage.ListStart, Limit: maxPageSize, WithGlobalVersion: token == ""}
	if pageSize > 0 && pageSize < maxPageSize {
		req.Limit = int(pageSize)
	}
	if token != "" {
		b, err := strconv.ParseInt(token, 10, 64)
		if err != nil {
			return nil, "", err
		}
		req.Before = b
	}
	limit := req.Limit
	req.Limit++ // one more, as the service asks, to learn whether another page follows
	page, err := d.s.List(ctx, w.user, req)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(page.Keys) > limit {
		page.Keys = page.Keys[:limit]
		next = strconv.FormatInt(page.Keys[limit-1].SortOrder, 10)
	}
	keys := make([]string, len(page.Keys))
	for i, k := range page.Keys {
		keys[i] = k.Key
	}
	return keys, next, nil
}
