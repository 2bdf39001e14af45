package vssclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"connectrpc.com/connect"

	"github.com/govss/vss/dump"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// The confirm phrases of DeleteStore (followed by the store id) and DeleteAllData
// (vss.proto): the request repeats what it deletes. They are the server's
// (server.DeleteStoreConfirm, server.DeleteAllDataConfirm); a test keeps them equal.
const (
	DeleteStoreConfirm   = "delete store "
	DeleteAllDataConfirm = "delete all data"
)

// DefaultImportChunkSize is the size of an ImportData chunk when ImportOptions.ChunkSize
// is zero.
const DefaultImportChunkSize = 4 << 20

// MinImportChunkSize is the least ImportOptions.ChunkSize: the server wants the dump's
// header whole in the first chunk, which 4 KiB always hold.
const MinImportChunkSize = 4 << 10

// ErrImportChecksum is what ImportData fails with when the server completed the import
// but reports another SHA-256 than the dump's trailer states.
var ErrImportChecksum = errors.New("vssclient: the server's SHA-256 of the import is not the dump's")

// StoreSum is one store of a dump and what its StoreEnd states: its number of entries
// and its checksum.
type StoreSum struct {
	// User is the store's user: empty in the dump of one user's stores.
	User string
	// ID is the store id.
	ID string
	// Sum is the store's number of entries and SHA-256 (Sum.Stores is 0).
	Sum dump.Sum
}

// DumpSummary is what reading a dump to its end through dump.Reader found: every
// record, limit and checksum of it was checked.
type DumpSummary struct {
	// Header is the dump's header.
	Header dump.Header
	// Sum is the trailer's: the numbers of stores and entries, and the dump's SHA-256.
	Sum dump.Sum
	// Bytes is the size of the dump.
	Bytes int64
	// StoreSums are each store's checksum, in dump order.
	StoreSums []StoreSum
}

// ExportResult is what ExportData exported.
type ExportResult struct {
	DumpSummary
}

// ImportResult is what ImportData imported: the dump, read and checked to its end here,
// whose SHA-256 the server reported when it completed the import.
type ImportResult struct {
	DumpSummary
	// ImportID is the import's id.
	ImportID string
}

// Progress is how far an export or import got.
type Progress struct {
	// Bytes is the number of bytes of the dump exported so far, or that the server has
	// committed of an import.
	Bytes int64
	// Total is the dump's size when known, -1 otherwise.
	Total int64
	// Stores and Entries are the numbers of stores and entries read so far (of an
	// import: that the server has read).
	Stores, Entries uint64
}

// VerifyDump reads the dump r to its end through dump.Reader, which checks every record,
// limit and checksum, and returns its summary. visit, if not nil, is called after the
// header (with kind 0) and after each record; its error ends the reading. A bad dump is
// an error that matches *dump.FormatError under errors.As; errors of r and of visit are
// returned as they are.
func VerifyDump(r io.Reader, visit func(k dump.Kind, dr *dump.Reader) error) (DumpSummary, error) {
	var got DumpSummary
	dr, err := dump.NewReader(r, dump.ReaderOptions{})
	if err != nil {
		return got, err
	}
	got.Header = dr.Header()
	if visit != nil {
		if err := visit(0, dr); err != nil {
			return got, err
		}
	}
	for {
		k, err := dr.Next()
		if err != nil {
			return got, err
		}
		switch k {
		case dump.KindStoreEnd:
			s := dr.Store()
			got.StoreSums = append(got.StoreSums, StoreSum{User: s.User, ID: s.ID, Sum: dr.Sum()})
		case dump.KindEnd:
			got.Sum, got.Bytes = dr.Sum(), dr.Offset()
		}
		if visit != nil {
			if err := visit(k, dr); err != nil {
				return got, err
			}
		}
		if k == dump.KindEnd {
			return got, nil
		}
	}
}

// ExportOption configures ExportData.
type ExportOption func(*exportOptions)

type exportOptions struct {
	progress func(Progress)
}

// WithExportProgress has ExportData call f after each record of the dump it passed on
// (Total is -1: an export's size is not known before its end).
func WithExportProgress(f func(Progress)) ExportOption {
	return func(o *exportOptions) { o.progress = f }
}

// ExportData streams the dump of every store of the client's user (docs/dump-format.md)
// into w, and checks it through dump.Reader as it passes: it returns once the dump was
// read and checked to its end, with its summary. A bad dump is an error that matches
// *dump.FormatError; an error of w is returned as it is.
//
// The stream has no time limit but ctx's (WithTimeout does not bound it: a large export
// takes long). An export that fails before its first byte is retried with the client's
// backoff, as a unary call is; once bytes went to w it is not, since w holds the
// beginning of that dump: call ExportData again with a fresh w.
func (c *Client) ExportData(ctx context.Context, w io.Writer, opts ...ExportOption) (ExportResult, error) {
	var o exportOptions
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	er, err := c.openExport(ctx)
	if err != nil {
		return ExportResult{}, err
	}
	defer er.stream.Close()
	out := &countingWriter{w: w}
	var visit func(k dump.Kind, dr *dump.Reader) error
	if o.progress != nil {
		visit = func(_ dump.Kind, dr *dump.Reader) error {
			stores, entries := dr.Counts()
			o.progress(Progress{Bytes: out.n, Total: -1, Stores: stores, Entries: entries})
			return nil
		}
	}
	got, err := VerifyDump(io.TeeReader(er, out), visit)
	if out.err != nil {
		// The TeeReader reports a failed write as a failure of the source.
		return ExportResult{got}, out.err
	}
	return ExportResult{got}, err
}

// openExport opens ExportData and waits for the dump's first bytes, trying again while
// the failures may pass.
func (c *Client) openExport(ctx context.Context) (*exportReader, error) {
	var er *exportReader
	err := c.withRetries(ctx, func() (err error) {
		er, err = c.exportOnce(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return er, nil
}

// exportOnce opens ExportData once and receives its first bytes.
func (c *Client) exportOnce(ctx context.Context) (*exportReader, error) {
	req := connect.NewRequest(&vssv1.ExportDataRequest{})
	if err := c.streamHeaders(ctx, req.Header()); err != nil {
		return nil, err
	}
	stream, err := c.svc.ExportData(ctx, req)
	if err != nil {
		return nil, err
	}
	er := &exportReader{stream: stream}
	for len(er.buf) == 0 {
		if !stream.Receive() {
			err := stream.Err()
			if err == nil {
				err = connect.NewError(connect.CodeUnavailable, errors.New("vssclient: the export ended before its first byte"))
			}
			stream.Close()
			c.invalidate(err)
			return nil, err
		}
		er.buf = stream.Msg().GetChunk()
	}
	return er, nil
}

// streamHeaders sets the headers of the client's HeaderProvider on a streaming call,
// which the client's interceptor does not see.
func (c *Client) streamHeaders(ctx context.Context, h http.Header) error {
	if c.headers == nil {
		return nil
	}
	ph, err := c.headers.Headers(ctx)
	if err != nil {
		return headerError(err)
	}
	for name, values := range ph {
		h[name] = values
	}
	return nil
}

// invalidate drops cached credentials that the server refused.
func (c *Client) invalidate(err error) {
	if connect.CodeOf(err) == connect.CodeUnauthenticated {
		if inv, ok := c.headers.(interface{ Invalidate() }); ok {
			inv.Invalidate()
		}
	}
}

// exportReader reads the chunks of an ExportData stream one after the other.
type exportReader struct {
	stream *connect.ServerStreamForClient[vssv1.ExportDataResponse]
	buf    []byte
	err    error
}

// Read returns the next bytes of the dump, io.EOF at the end of the stream, or the
// stream's error.
func (r *exportReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if !r.stream.Receive() {
			r.err = io.EOF
			if err := r.stream.Err(); err != nil {
				r.err = err
			}
			continue
		}
		r.buf = r.stream.Msg().GetChunk()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// countingWriter counts what it writes, and keeps the first error of w (a TeeReader
// would otherwise report it as an error of the source).
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

// Write writes p to w and counts it.
func (cw *countingWriter) Write(p []byte) (int, error) {
	if cw.err != nil {
		return 0, cw.err
	}
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	cw.err = err
	return n, err
}

// ImportOptions configure ImportData.
type ImportOptions struct {
	// ChunkSize is the size of the chunks sent, from MinImportChunkSize up to the
	// server's request body limit (64 MiB by default); zero means
	// DefaultImportChunkSize. A chunk is larger when the server asks for a record that
	// does not fit.
	ChunkSize int64
	// Resume first asks the server where an import of this id stands, and sends only
	// the rest of the dump (it is still read and checked from its beginning). Set it
	// only when src holds exactly the bytes of the earlier attempt, such as the same
	// file: a new export of the same data has other bytes (its header's time), and is
	// sent whole, the server skipping what it committed.
	Resume bool
	// Progress, if set, is called after each answer of the server.
	Progress func(Progress)
}

// sizedReaderAt is a source that ImportData reads chunks from again instead of holding
// them: an *io.SectionReader of a file, a *bytes.Reader.
type sizedReaderAt interface {
	io.ReaderAt
	Size() int64
}

// ImportData imports the dump src into the client's user's stores under importID (1
// to 64 printable ASCII characters, chosen by the caller), sending it in chunks with
// ImportData: each from the offset the server committed (committed_offset), at least as
// large as the record it asks for (next_record_bytes). src is read once, to its end,
// through dump.Reader, and each chunk goes out once its bytes were read. A stream
// (io.Reader) is held in memory only from the offset the server committed; a src that
// is also an io.ReaderAt with a Size method (an *io.SectionReader of a file, a
// *bytes.Reader) is read again at the offsets sent instead, and its size is the
// progress's Total.
//
// Each chunk is retried with the client's backoff on failures that may pass; sending a
// chunk again is safe, since the server answers a chunk it already took with the offset
// it expects. It returns once the server completed the import, verified it against what
// the stores hold, and reported the SHA-256 of the dump's trailer; another SHA-256 is an
// error that matches ErrImportChecksum. Should the answer to the chunk that ends the dump
// be lost, the server answers the chunk sent again with the import's result, done.
//
// A dump found bad here is an error that matches *dump.FormatError, and the import is
// given up (AbortImport), so that nothing of it stays; the server refuses a dump it
// finds bad with INVALID_ARGUMENT (IsInvalid) and keeps nothing of it either. A store
// of the dump that is not empty on the server is refused with FAILED_PRECONDITION. Other
// failures, ctx's end included, leave what the server committed: call ImportData again
// with the same importID and dump to resume, or AbortImport to give it up.
func (c *Client) ImportData(ctx context.Context, src io.Reader, importID string, opts ImportOptions) (ImportResult, error) {
	res := ImportResult{ImportID: importID}
	if importID == "" {
		return res, errors.New("vssclient: ImportData needs an import id: choose one that names this dump, to resume it under the same id")
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = DefaultImportChunkSize
	}
	if opts.ChunkSize < MinImportChunkSize {
		return res, fmt.Errorf("vssclient: an import chunk of %d bytes is too small: the first must hold the dump's header, which 4 KiB (MinImportChunkSize) always do", opts.ChunkSize)
	}
	im := &importer{c: c, id: importID, size: opts.ChunkSize, progress: opts.Progress, total: -1}
	if ra, ok := src.(sizedReaderAt); ok {
		im.ra, im.total = ra, ra.Size()
	}
	got, err := VerifyDump(io.TeeReader(src, im), func(k dump.Kind, dr *dump.Reader) error {
		switch k {
		case 0:
			if dr.Header().Scope != dump.ScopeUser {
				return errors.New("vssclient: the dump holds the stores of a whole database, each with its user (vss-server admin export): " +
					"a user imports the dump of their own stores; an operator imports this one with vss-server admin import")
			}
			if opts.Resume {
				return im.probe(ctx)
			}
			return nil
		case dump.KindEnd:
			return nil
		}
		return im.send(ctx)
	})
	res.DumpSummary = got
	if err != nil {
		return res, im.abortBadDump(ctx, err)
	}
	if err := im.finish(ctx); err != nil {
		return res, err
	}
	if !bytes.Equal(im.resp.GetSha256(), got.Sum.SHA256[:]) {
		return res, fmt.Errorf("%w: import %s: the server reports SHA-256 %x, the dump's is %x", ErrImportChecksum, importID, im.resp.GetSha256(), got.Sum.SHA256)
	}
	return res, nil
}

// AbortImport gives the import importID up: the server deletes everything it wrote and
// forgets it.
func (c *Client) AbortImport(ctx context.Context, importID string) error {
	_, err := c.svc.ImportData(ctx, connect.NewRequest(&vssv1.ImportDataRequest{ImportId: importID, Abort: true}))
	return err
}

// DeleteStore deletes the store storeID of the client's user: every key, its global
// version, its change feed and its leases. With dryRun it deletes nothing and reports
// what it would delete. It sends the confirm phrase the server requires: ask the user
// (show a dry run first) before calling it without dryRun. A retried call whose first
// attempt deleted the store reports what the retry found, nothing.
func (c *Client) DeleteStore(ctx context.Context, storeID string, dryRun bool) (*vssv1.DeleteStoreResponse, error) {
	req := &vssv1.DeleteStoreRequest{StoreId: storeID, DryRun: dryRun}
	if !dryRun {
		req.Confirm = DeleteStoreConfirm + storeID
	}
	return unwrap(c.svc.DeleteStore(ctx, connect.NewRequest(req)))
}

// DeleteAllData deletes every store of the client's user, as DeleteStore deletes one.
// With dryRun it deletes nothing and reports what it would delete.
func (c *Client) DeleteAllData(ctx context.Context, dryRun bool) (*vssv1.DeleteAllDataResponse, error) {
	req := &vssv1.DeleteAllDataRequest{DryRun: dryRun}
	if !dryRun {
		req.Confirm = DeleteAllDataConfirm
	}
	return unwrap(c.svc.DeleteAllData(ctx, connect.NewRequest(req)))
}

// importer sends a dump to ImportData as it is read, in chunks: it takes the dump's
// bytes as they are read (it is the io.Writer they are copied into), sends them once
// there are enough for a chunk, and moves on to the offset the server committed.
type importer struct {
	c        *Client
	id       string
	size     int64
	progress func(Progress)
	total    int64

	// ra, if not nil, is the source, read again at the offsets sent; otherwise buf
	// holds the dump's bytes from base on.
	ra      io.ReaderAt
	buf     []byte
	scratch []byte

	base int64 // the offset the server expects next
	read int64 // bytes of the dump read so far
	need int64 // the size of the record at base, which the next chunk must hold
	resp *vssv1.ImportDataResponse
}

// Write takes the next bytes of the dump. Bytes before base, which the server has
// already committed, are dropped.
func (im *importer) Write(p []byte) (int, error) {
	n := len(p)
	if im.ra == nil {
		if skip := im.base - im.read; skip > 0 {
			d := min(skip, int64(len(p)))
			p, im.read = p[d:], im.read+d
		}
		im.buf = append(im.buf, p...)
	}
	im.read += int64(len(p))
	return n, nil
}

// held is the number of bytes read from base on.
func (im *importer) held() int64 { return max(im.read-im.base, 0) }

// chunk returns the n bytes from base on, which have been read.
func (im *importer) chunk(n int64) ([]byte, error) {
	if im.ra == nil {
		return im.buf[:n], nil
	}
	if int64(cap(im.scratch)) < n {
		im.scratch = make([]byte, n)
	}
	b := im.scratch[:n]
	if _, err := im.ra.ReadAt(b, im.base); err != nil && !(errors.Is(err, io.EOF) && n > 0) {
		return nil, fmt.Errorf("vssclient: import %s: reading the dump again at byte %d: %w", im.id, im.base, err)
	}
	return b, nil
}

// done reports whether the server said the import is complete.
func (im *importer) done() bool { return im.resp.GetDone() }

// want is the size of the next chunk.
func (im *importer) want() int64 { return max(im.size, im.need) }

// send sends chunks while enough bytes are held for one.
func (im *importer) send(ctx context.Context) error {
	for !im.done() && im.held() >= im.want() {
		if err := im.sendChunk(ctx, im.want(), false); err != nil {
			return err
		}
	}
	return nil
}

// finish sends the rest of the dump, which has been read to its end, until the server
// says the import is complete.
func (im *importer) finish(ctx context.Context) error {
	for !im.done() {
		n := min(im.held(), im.want())
		if err := im.sendChunk(ctx, n, n == im.held()); err != nil {
			return err
		}
		if !im.done() && im.base >= im.read {
			return fmt.Errorf("vssclient: import %s: the server took the whole dump (%d bytes) without completing the import", im.id, im.read)
		}
	}
	return nil
}

// sendChunk sends the n bytes from base on and moves on to the offset the server
// answers.
func (im *importer) sendChunk(ctx context.Context, n int64, last bool) error {
	chunk, err := im.chunk(n)
	if err != nil {
		return err
	}
	resp, err := im.c.svc.ImportData(ctx, connect.NewRequest(&vssv1.ImportDataRequest{ImportId: im.id, Offset: im.base, Chunk: chunk, Last: last}))
	if err != nil {
		return err
	}
	before := im.base
	if err := im.advance(resp.Msg); err != nil {
		return err
	}
	if !im.done() && im.base == before && (last || im.need <= n) {
		return fmt.Errorf("vssclient: import %s: the server committed nothing of a chunk of %d bytes at byte %d and asks for no more", im.id, n, before)
	}
	return nil
}

// advance moves to the offset the server expects next: it drops the bytes it committed,
// or, when it expects bytes not read yet (an import resumed), skips them as they come.
func (im *importer) advance(resp *vssv1.ImportDataResponse) error {
	committed := resp.GetCommittedOffset()
	if committed < im.base {
		return fmt.Errorf("vssclient: import %s: the server expects the dump from byte %d on, before the bytes this import still holds (from byte %d): "+
			"is another client running the same import? If not, import again", im.id, committed, im.base)
	}
	im.resp = resp
	if im.ra == nil {
		if held := im.read - im.base; committed-im.base <= held {
			im.buf = append(im.buf[:0], im.buf[committed-im.base:]...)
		} else {
			im.buf = im.buf[:0]
		}
	}
	im.base, im.need = committed, resp.GetNextRecordBytes()
	if im.progress != nil {
		im.progress(Progress{Bytes: committed, Total: im.total, Stores: resp.GetStores(), Entries: resp.GetEntries()})
	}
	return nil
}

// probe asks the server where an import it may have begun earlier stands, with an
// empty chunk at an offset no import ever expects (1, inside the magic number): the
// server answers with the offset it expects (or, for an import that is done, with its
// result), or refuses with FAILED_PRECONDITION when it has no import of that id, which
// then starts at 0. The bytes before the
// offset are then read (and checked) but not sent again.
func (im *importer) probe(ctx context.Context) error {
	resp, err := im.c.svc.ImportData(ctx, connect.NewRequest(&vssv1.ImportDataRequest{ImportId: im.id, Offset: 1}))
	switch {
	case connect.CodeOf(err) == connect.CodeFailedPrecondition:
		return nil
	case err != nil:
		return err
	}
	// An import that is done (this dump, imported before) answers with its result:
	// the dump is then read and checked against it, and nothing is sent.
	return im.advance(resp.Msg)
}

// abortBadDump gives up the import of a dump found bad here, so that nothing of it
// stays imported, and returns err.
func (im *importer) abortBadDump(ctx context.Context, err error) error {
	var fe *dump.FormatError
	if !errors.As(err, &fe) {
		return err
	}
	if aerr := im.c.AbortImport(context.WithoutCancel(ctx), im.id); aerr != nil {
		return fmt.Errorf("%w (and giving up import %s on the server failed: %v; give it up with AbortImport)", err, im.id, aerr)
	}
	return err
}
