package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/govss/vss/dump"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// Transfer is what the export and import of one large user measured on one store:
// throughput and how much each raised the server's peak RSS.
type Transfer struct {
	Store string `json:"store"`
	// Bytes is the size of the dump; ValueBytes of the values it carries; Entries
	// their number.
	Bytes      int64 `json:"bytes"`
	ValueBytes int64 `json:"value_bytes"`
	Entries    int64 `json:"entries"`
	// StartRSSMB is the server's RSS once the data was written, before the export.
	StartRSSMB float64 `json:"start_rss_mb"`
	// ExportMBps and ImportMBps are dump megabytes (MiB) per second through ExportData
	// (read to a file) and ImportData (4 MiB chunks, one at a time, from that file).
	ExportMBps float64 `json:"export_mbps"`
	ImportMBps float64 `json:"import_mbps"`
	// ExportRaiseMB and ImportRaiseMB are how far each raised the server's peak RSS
	// above its RSS when it began.
	ExportRaiseMB float64 `json:"export_raise_mb"`
	ImportRaiseMB float64 `json:"import_raise_mb"`
}

// transferValueBytes is the size of the values of the transfer probe: a channel
// monitor of a busy channel is of this order.
const transferValueBytes = 128 << 10

// importChunkBytes is the chunk of the transfer probe's import, as vssctl sends it.
const importChunkBytes = 4 << 20

// measureTransfer writes about total bytes of values for one wallet through srv, then
// exports them with ExportData into a file in dir and imports that file with ImportData
// for another wallet, measuring each.
func measureTransfer(ctx context.Context, store string, srv *child, total int64, dir string) (Transfer, error) {
	res := Transfer{Store: store}
	ws, err := newWallets(2)
	if err != nil {
		return res, err
	}
	c := newConnect(srv.root, newHTTPClient(8, &counters{}))
	if err := fillWallet(ctx, c, ws[0], total, &res); err != nil {
		return res, fmt.Errorf("writing the data: %w", err)
	}
	pid := srv.pid()
	path := filepath.Join(dir, "transfer.vssdump")

	// Export.
	rss, _, err := procMem(pid)
	if err != nil {
		return res, err
	}
	res.StartRSSMB = float64(rss) / mb
	_ = resetHWM(pid)
	start := time.Now()
	f, err := os.Create(path)
	if err != nil {
		return res, err
	}
	stream, err := c.c.ExportData(ctx, authed(ws[0], &vssv1.ExportDataRequest{}))
	if err != nil {
		f.Close()
		return res, err
	}
	for stream.Receive() {
		n, err := f.Write(stream.Msg().GetChunk())
		res.Bytes += int64(n)
		if err != nil {
			f.Close()
			return res, err
		}
	}
	if err := errors.Join(stream.Err(), f.Close()); err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	res.ExportMBps = float64(res.Bytes) / mb / time.Since(start).Seconds()
	_, hwm, _ := procMem(pid)
	res.ExportRaiseMB = float64(hwm-rss) / mb

	// Import, for the other wallet.
	rss, _, _ = procMem(pid)
	_ = resetHWM(pid)
	start = time.Now()
	sum, err := importFile(ctx, c, ws[1], path)
	if err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	res.ImportMBps = float64(res.Bytes) / mb / time.Since(start).Seconds()
	_, hwm, _ = procMem(pid)
	res.ImportRaiseMB = float64(hwm-rss) / mb
	if sum.Entries != uint64(res.Entries) {
		return res, fmt.Errorf("import: %d entries imported, %d written", sum.Entries, res.Entries)
	}
	return res, os.Remove(path)
}

// fillWallet writes total bytes of random values of transferValueBytes for w, over two
// stores, eight values per PutObjects, from four writers.
func fillWallet(ctx context.Context, c *connectClient, w *wallet, total int64, res *Transfer) error {
	const perPut, writers = 8, 4
	puts := int((total + perPut*transferValueBytes - 1) / (perPut * transferValueBytes))
	var (
		mu   sync.Mutex
		next int
		errs = make(chan error, writers)
	)
	for range writers {
		go func() {
			val := make([]byte, transferValueBytes)
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= puts || ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				items := make([]*vssv1.KeyValue, perPut)
				for j := range items {
					_, _ = rand.Read(val)
					items[j] = &vssv1.KeyValue{Key: "monitor/" + strconv.Itoa(i*perPut+j), Version: 0, Value: bytes.Clone(val)}
				}
				storeID := []string{"wallet", "payments"}[i%2]
				if err := c.put(ctx, w, storeID, items); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
	for range writers {
		err = errors.Join(err, <-errs)
	}
	res.Entries, res.ValueBytes = int64(puts*perPut), int64(puts*perPut*transferValueBytes)
	return err
}

// importFile sends the dump at path through ImportData for w in chunks of
// importChunkBytes (more when a record is larger), one at a time, and returns what the
// import answered at the end.
func importFile(ctx context.Context, c *connectClient, w *wallet, path string) (dump.Sum, error) {
	f, err := os.Open(path)
	if err != nil {
		return dump.Sum{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return dump.Sum{}, err
	}
	buf := make([]byte, importChunkBytes)
	var off int64
	for {
		size := min(int64(len(buf)), fi.Size()-off)
		n, err := f.ReadAt(buf[:size], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return dump.Sum{}, err
		}
		resp, err := c.c.ImportData(ctx, authed(w, &vssv1.ImportDataRequest{ImportId: "bench", Offset: off,
			Chunk: buf[:n], Last: off+int64(n) == fi.Size()}))
		if err != nil {
			return dump.Sum{}, err
		}
		if resp.Msg.GetDone() {
			return dump.Sum{Stores: resp.Msg.GetStores(), Entries: resp.Msg.GetEntries()}, nil
		}
		if need := resp.Msg.GetNextRecordBytes(); need > int64(len(buf)) {
			buf = make([]byte, need)
		}
		if resp.Msg.GetCommittedOffset() <= off && resp.Msg.GetNextRecordBytes() == 0 {
			return dump.Sum{}, fmt.Errorf("the import does not advance at byte %d", off)
		}
		off = resp.Msg.GetCommittedOffset()
	}
}

func printTransfer(w io.Writer, t Transfer) {
	fmt.Fprintf(w, "# transfer (%s): a user of %d entries, %.0f MB of values (dump %.0f MB): export %.1f MB/s, peak RSS +%.1f MB; import %.1f MB/s, peak RSS +%.1f MB (RSS before %.1f MB)\n",
		t.Store, t.Entries, float64(t.ValueBytes)/mb, float64(t.Bytes)/mb, t.ExportMBps, t.ExportRaiseMB, t.ImportMBps, t.ImportRaiseMB, t.StartRSSMB)
}
