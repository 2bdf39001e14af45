package faulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/govss/vss/dump"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
	"github.com/govss/vss/internal/pgtest"
)

// dumpUser calls the server as one user, with a fresh signature per request.
type dumpUser struct {
	c    vssv1connect.VssServiceClient
	auth func() string
}

func newDumpUser(t *testing.T, base string) *dumpUser {
	t.Helper()
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &dumpUser{c: vssv1connect.NewVssServiceClient(newHTTPClient(10*time.Second), base), auth: signer(key)}
}

func signed[T any](u *dumpUser, msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	r.Header().Set("Authorization", u.auth())
	return r
}

// export reads the user's dump; the server must stay up meanwhile.
func (u *dumpUser) export(t *testing.T) []byte {
	t.Helper()
	stream, err := u.c.ExportData(context.Background(), signed(u, &vssv1.ExportDataRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for stream.Receive() {
		buf.Write(stream.Msg().GetChunk())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("export: %v", err)
	}
	return buf.Bytes()
}

// TestKillServerDuringImport kills the server with SIGKILL in the middle of an import
// sent in chunks, on PostgreSQL and on the embedded store, starts it again, and lets the
// client go on from the last offset the server acknowledged: the import completes with
// the source's checksum, and an export of the target has it too.
func TestKillServerDuringImport(t *testing.T) {
	stores := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"postgres", func(t *testing.T) []string { return []string{"--database-url", pgtest.NewDatabase(t)} }},
		{"embedded", func(t *testing.T) []string { return []string{"--data-dir", t.TempDir()} }},
	}
	for _, store := range stores {
		t.Run(store.name, func(t *testing.T) {
			srv := startServer(t, append(store.args(t), "--auth", "signature")...)
			ctx := context.Background()
			src, dst := newDumpUser(t, srv.url()), newDumpUser(t, srv.url())
			val := make([]byte, 16<<10)
			for i := range 40 {
				items := make([]*vssv1.KeyValue, 5)
				for j := range items {
					_, _ = rand.Read(val)
					items[j] = &vssv1.KeyValue{Key: fmt.Sprintf("k%03d", i*5+j), Version: 0, Value: bytes.Clone(val)}
				}
				storeID := []string{"wallet", "payments"}[i%2]
				if _, err := src.c.PutObjects(ctx, signed(src, &vssv1.PutObjectRequest{StoreId: storeID, TransactionItems: items})); err != nil {
					t.Fatal(err)
				}
			}
			data := src.export(t)
			want := readSum(t, data)

			const chunk = 64 << 10
			var off int64
			killed := false
			for calls := 0; ; calls++ {
				if calls > 10000 {
					t.Fatal("the import does not advance")
				}
				if !killed && off > int64(len(data))/3 {
					// Kill the server while a chunk is in flight: its outcome is unknown
					// to the client, which sends it again once the server is back.
					done := make(chan error, 1)
					go func() {
						_, err := dst.c.ImportData(ctx, signed(dst, &vssv1.ImportDataRequest{ImportId: "kill", Offset: off, Chunk: data[off:min(off+chunk, int64(len(data)))]}))
						done <- err
					}()
					time.Sleep(3 * time.Millisecond)
					srv.kill()
					t.Logf("killed the server with %d of %d bytes acknowledged, a chunk in flight: %v", off, len(data), <-done)
					killed = true
					srv.start()
				}
				end := min(off+chunk, int64(len(data)))
				resp, err := dst.c.ImportData(ctx, signed(dst, &vssv1.ImportDataRequest{ImportId: "kill", Offset: off, Chunk: data[off:end], Last: end == int64(len(data))}))
				if err != nil {
					t.Fatalf("chunk at %d: %v", off, err)
				}
				if resp.Msg.GetDone() {
					if !bytes.Equal(resp.Msg.GetSha256(), want.SHA256[:]) {
						t.Fatalf("the import ends with %x, the source's dump is %x", resp.Msg.GetSha256(), want.SHA256)
					}
					break
				}
				off = resp.Msg.GetCommittedOffset()
			}
			if !killed {
				t.Fatal("the server was never killed")
			}
			// Read back through a fresh process.
			srv.kill()
			srv.start()
			if got := readSum(t, dst.export(t)); got.SHA256 != want.SHA256 || got.Entries != 200 {
				t.Fatalf("the target exports %d entries %x, the source %d %x", got.Entries, got.SHA256, want.Entries, want.SHA256)
			}
		})
	}
}

// readSum reads a whole dump and returns its sum.
func readSum(t *testing.T, data []byte) dump.Sum {
	t.Helper()
	r, err := dump.NewReader(bytes.NewReader(data), dump.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		k, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if k == dump.KindEnd {
			return r.Sum()
		}
	}
}

