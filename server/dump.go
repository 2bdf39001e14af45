package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/govss/vss/dump"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/transfer"
)

// DumpStore is a store that exports, imports and deletes a user's data.
type DumpStore interface {
	transfer.Target
	storage.Deleter
}

// Dumps serves ExportData, ImportData, DeleteStore and DeleteAllData beside Service,
// with its validation and error mapping. An export and an import go through package
// transfer, as vssctl's and the admin commands' do.
type Dumps struct {
	svc   *Service
	store DumpStore
	// maxRecord is the largest dump record an import accepts: a value as large as a
	// request body, with room for its key.
	maxRecord int
}

// Producer is the producer an export of the server names in its dump's header.
const Producer = "vss-server"

// MaxImportIDLength bounds an import id, in characters.
const MaxImportIDLength = 64

// exportChunkBytes is the most dump bytes one ExportData message carries.
const exportChunkBytes = 1 << 20

// exportSendTimeout bounds the writing of one ExportData message to the client; the
// server's write timeout does not bound an export as a whole.
const exportSendTimeout = time.Minute

// The confirm phrases of DeleteStore (followed by the store id) and DeleteAllData.
const (
	DeleteStoreConfirm   = "delete store "
	DeleteAllDataConfirm = "delete all data"
)

var errNoDump = connect.NewError(connect.CodeUnimplemented, errors.New("this server's store cannot export, import or delete stores"))

// chunkSender cuts the dump an export writes into messages of at most exportChunkBytes,
// each written within exportSendTimeout.
type chunkSender struct {
	ctx  context.Context
	send func(*vssv1.ExportDataResponse) error
	buf  []byte
}

func (c *chunkSender) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(c.buf) == 0 && len(p) >= exportChunkBytes {
			if err := c.flush(p[:exportChunkBytes]); err != nil { // large values go out without a copy
				return 0, err
			}
			p = p[exportChunkBytes:]
			continue
		}
		k := min(len(p), exportChunkBytes-len(c.buf))
		c.buf, p = append(c.buf, p[:k]...), p[k:]
		if len(c.buf) == exportChunkBytes {
			if err := c.flush(c.buf); err != nil {
				return 0, err
			}
			c.buf = c.buf[:0]
		}
	}
	return n, nil
}

func (c *chunkSender) flush(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	rc := writeDeadlines(c.ctx)
	if rc != nil {
		_ = rc.SetWriteDeadline(time.Now().Add(exportSendTimeout))
	}
	return c.send(&vssv1.ExportDataResponse{Chunk: b})
}

// ExportData writes every store of user as a dump, in one snapshot, through send.
func (d *Dumps) ExportData(ctx context.Context, user string, send func(*vssv1.ExportDataResponse) error) error {
	w := &chunkSender{ctx: ctx, send: send, buf: make([]byte, 0, 64<<10)}
	if _, err := transfer.Export(ctx, d.store, user, w, Producer); err != nil {
		return err
	}
	return w.flush(w.buf)
}

// ImportData imports the next chunk of a dump (see ImportDataRequest in vss.proto).
func (d *Dumps) ImportData(ctx context.Context, user string, req *vssv1.ImportDataRequest) (*vssv1.ImportDataResponse, error) {
	id := req.GetImportId()
	if err := printable("import_id", id, false); err != nil {
		return nil, err
	}
	if len(id) > MaxImportIDLength {
		return nil, invalidf("import_id is longer than %d characters", MaxImportIDLength)
	}
	if req.GetOffset() < 0 {
		return nil, invalidf("offset must not be negative")
	}
	if req.GetAbort() {
		if len(req.GetChunk()) > 0 {
			return nil, invalidf("an abort carries no chunk")
		}
		_, err := d.store.AbortImport(ctx, user, id)
		return &vssv1.ImportDataResponse{}, err
	}
	sess, found, err := d.store.ImportSession(ctx, user, id)
	if err != nil {
		return nil, err
	}
	opts := dump.ReaderOptions{MaxRecordBytes: d.maxRecord}
	in := bytes.NewReader(req.GetChunk())
	var r *dump.Reader
	switch {
	case req.GetOffset() == 0:
		// From the beginning: a new import, or an interrupted one sent again, which
		// skips what it committed.
		if r, err = dump.NewReader(in, opts); err != nil {
			if dump.Truncated(err) && !req.GetLast() {
				return nil, invalidf("the first chunk must hold the dump's header: send at least 4 KiB, or the whole dump")
			}
			if _, aerr := d.store.AbortImport(ctx, user, id); aerr != nil {
				return nil, aerr
			}
			return nil, err
		}
		if found && sess.Done && bytes.Equal(sess.Checkpoint, headerKey(r.Header())) {
			// The same dump sent again from its start (an import of one chunk whose
			// answer was lost): it is done. A new export has another header.
			return doneResponse(sess), nil
		}
	case found && sess.Done:
		// A chunk sent again because its answer was lost: the import is done.
		return doneResponse(sess), nil
	case !found || sess.Checkpoint == nil:
		return nil, &Error{Code: vssv1.ErrorCode_CONFLICT_EXCEPTION, Kind: KindPrecondition,
			Message: "no import " + QuoteInput(id) + " is in progress here: send the dump from offset 0"}
	case req.GetOffset() != sess.Offset:
		return &vssv1.ImportDataResponse{CommittedOffset: sess.Offset}, nil
	default:
		if r, err = dump.Resume(in, sess.Checkpoint, opts); err != nil {
			return nil, err
		}
	}
	if r.Header().Scope != dump.ScopeUser {
		return nil, invalidf("ImportData takes a dump of one user's stores (scope user); this dump holds a whole database (scope %s): import it with vss-server admin import", r.Header().Scope)
	}
	res, err := transfer.Import(ctx, d.store, r, transfer.ImportOptions{User: user, ImportID: id, Partial: !req.GetLast()})
	if err != nil {
		return nil, err
	}
	resp := &vssv1.ImportDataResponse{CommittedOffset: res.Offset, Done: res.Done, Stores: res.Stores, Entries: res.Entries}
	if res.Done {
		resp.Sha256 = res.Sum.SHA256[:]
		// Kept so that the last chunk, sent again because its answer was lost, is told
		// the import is done (until the same id starts again from offset 0).
		err = d.store.SaveImportSession(ctx, user, id, storage.ImportSession{Offset: res.Offset, Done: true,
			Checkpoint: headerKey(r.Header()), Stores: int64(res.Stores), Entries: int64(res.Entries), SHA256: resp.Sha256})
		return resp, err
	}
	if end := req.GetOffset() + int64(len(req.GetChunk())); res.Pending > end-res.Offset {
		resp.NextRecordBytes = res.Pending
	}
	err = d.store.SaveImportSession(ctx, user, id, storage.ImportSession{Offset: res.Offset, Checkpoint: res.Checkpoint})
	return resp, err
}

// doneResponse is the answer to a chunk of an import that is done.
func doneResponse(sess storage.ImportSession) *vssv1.ImportDataResponse {
	return &vssv1.ImportDataResponse{CommittedOffset: sess.Offset, Done: true, Stores: uint64(sess.Stores),
		Entries: uint64(sess.Entries), Sha256: sess.SHA256}
}

// headerKey identifies a dump by its header, which names its producer and the time it
// began to the nanosecond: a done import keeps it, in place of a checkpoint, to tell
// the same dump sent again from a new export of the data.
func headerKey(h dump.Header) []byte {
	sum := sha256.Sum256(fmt.Appendf(nil, "%q %d %d %t %t %t %t", h.Producer, h.Created.UnixNano(), h.Scope,
		h.Snapshot, h.ListingOrder, h.Versions, h.GlobalVersions))
	return sum[:]
}

// DeleteStore deletes one store of user, or reports what it holds for a dry run.
func (d *Dumps) DeleteStore(ctx context.Context, user string, req *vssv1.DeleteStoreRequest) (*vssv1.DeleteStoreResponse, error) {
	id := req.GetStoreId()
	if err := validateStoreID(id); err != nil {
		return nil, err
	}
	if req.GetDryRun() {
		st, err := d.store.StoreStats(ctx, user, id)
		return &vssv1.DeleteStoreResponse{Keys: st.Keys, Bytes: st.Bytes}, err
	}
	if req.GetConfirm() != DeleteStoreConfirm+id {
		return nil, invalidf("confirm must be %q to delete this store: nothing was deleted", DeleteStoreConfirm+id)
	}
	st, err := d.store.DeleteStore(ctx, user, id)
	if err != nil {
		return nil, err
	}
	return &vssv1.DeleteStoreResponse{Keys: st.Keys, Bytes: st.Bytes, Deleted: true}, nil
}

// DeleteAllData deletes every store of user, or reports what they hold for a dry run.
func (d *Dumps) DeleteAllData(ctx context.Context, user string, req *vssv1.DeleteAllDataRequest) (*vssv1.DeleteAllDataResponse, error) {
	if !req.GetDryRun() && req.GetConfirm() != DeleteAllDataConfirm {
		return nil, invalidf("confirm must be %q to delete all of this user's data: nothing was deleted", DeleteAllDataConfirm)
	}
	usage, err := d.store.Usage(ctx, user)
	if err != nil {
		return nil, err
	}
	resp := &vssv1.DeleteAllDataResponse{}
	for _, u := range usage {
		resp.Stores, resp.Keys, resp.Bytes = u.Stores, u.Keys, u.Bytes
	}
	if req.GetDryRun() {
		return resp, nil
	}
	n, err := d.store.DeleteUser(ctx, user)
	if err != nil {
		return nil, err
	}
	resp.Keys, resp.Deleted = n, true
	return resp, nil
}

func (c connectService) ExportData(ctx context.Context, _ *connect.Request[vssv1.ExportDataRequest], stream *connect.ServerStream[vssv1.ExportDataResponse]) error {
	if c.h.dumps == nil {
		return errNoDump
	}
	if err := c.h.dumps.ExportData(ctx, userFrom(ctx), stream.Send); err != nil {
		return connectError(c.h.svc.classify(ctx, err))
	}
	noteResult(ctx, resultOK)
	return nil
}

func (c connectService) ImportData(ctx context.Context, req *connect.Request[vssv1.ImportDataRequest]) (*connect.Response[vssv1.ImportDataResponse], error) {
	if c.h.dumps == nil {
		return nil, errNoDump
	}
	return unary(c.h, ctx, req.Msg, c.h.dumps.ImportData)
}

func (c connectService) DeleteStore(ctx context.Context, req *connect.Request[vssv1.DeleteStoreRequest]) (*connect.Response[vssv1.DeleteStoreResponse], error) {
	if c.h.dumps == nil {
		return nil, errNoDump
	}
	return unary(c.h, ctx, req.Msg, c.h.dumps.DeleteStore)
}

func (c connectService) DeleteAllData(ctx context.Context, req *connect.Request[vssv1.DeleteAllDataRequest]) (*connect.Response[vssv1.DeleteAllDataResponse], error) {
	if c.h.dumps == nil {
		return nil, errNoDump
	}
	return unary(c.h, ctx, req.Msg, c.h.dumps.DeleteAllData)
}
