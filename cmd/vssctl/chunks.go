package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
)

// defaultChunkSize is the size of an ImportData chunk without --chunk-size.
const defaultChunkSize = 4 << 20

// Bounds of --chunk-size: a chunk is one request body, and the server's default limit
// of a body is 64 MiB; the server wants the dump's header whole in the first chunk, and
// asks for at least 4 KiB.
const (
	minChunkSize = 4 << 10
	maxChunkSize = 64 << 20
)

// byteSize is a flag that holds a number of bytes: a plain number, or one with the
// suffix KiB or MiB.
type byteSize int64

// String returns the size in bytes.
func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

// Set parses a size such as 1048576, 512KiB or 4MiB.
func (b *byteSize) Set(s string) error {
	unit := int64(1)
	switch {
	case strings.HasSuffix(s, "MiB"):
		unit, s = 1<<20, strings.TrimSuffix(s, "MiB")
	case strings.HasSuffix(s, "KiB"):
		unit, s = 1<<10, strings.TrimSuffix(s, "KiB")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > maxChunkSize/unit || n*unit < minChunkSize {
		return fmt.Errorf("want a size from 4KiB to 64MiB, such as 1048576, 512KiB or 4MiB")
	}
	*b = byteSize(n * unit)
	return nil
}

// chunkImport sends a dump to a server's ImportData as it is read, in chunks: it holds
// the bytes from the offset the server committed up to those read so far, sends them
// once there are enough, and drops what the server committed. It is the io.Writer that
// the dump's bytes are copied into as the dump reader reads them.
type chunkImport struct {
	svc vssv1connect.VssServiceClient
	// to is the server's URL, for messages.
	to   string
	id   string
	size int64
	// progress, if set, is called after each answer.
	progress func(resp *vssv1.ImportDataResponse)

	buf  []byte // the dump's bytes from base on
	base int64  // the offset the server expects next
	read int64  // bytes of the dump read so far: base+len(buf), or less while skipping
	need int64  // the size of the record at base, which the next chunk must hold
	resp *vssv1.ImportDataResponse
}

// Write takes the next bytes of the dump. Bytes before base, which the server has
// already committed, are dropped.
func (ci *chunkImport) Write(p []byte) (int, error) {
	n := len(p)
	if skip := ci.base - ci.read; skip > 0 {
		d := min(skip, int64(len(p)))
		p, ci.read = p[d:], ci.read+d
	}
	ci.buf = append(ci.buf, p...)
	ci.read += int64(len(p))
	return n, nil
}

// done reports whether the server said the import is complete.
func (ci *chunkImport) done() bool { return ci.resp.GetDone() }

// want is the size of the next chunk.
func (ci *chunkImport) want() int64 { return max(ci.size, ci.need) }

// send sends chunks while enough bytes are held for one.
func (ci *chunkImport) send(ctx context.Context) error {
	for !ci.done() && int64(len(ci.buf)) >= ci.want() {
		if err := ci.sendChunk(ctx, ci.buf[:ci.want()], false); err != nil {
			return err
		}
	}
	return nil
}

// finish sends the rest of the dump, which has been read to its end, until the server
// says the import is complete.
func (ci *chunkImport) finish(ctx context.Context) error {
	for !ci.done() {
		n := min(int64(len(ci.buf)), ci.want())
		last := n == int64(len(ci.buf))
		if err := ci.sendChunk(ctx, ci.buf[:n], last); err != nil {
			return err
		}
		if !ci.done() && ci.base >= ci.read {
			return fmt.Errorf("import %s: the server took the whole dump (%d bytes) without completing the import", ci.id, ci.read)
		}
	}
	return nil
}

// sendChunk sends chunk, which starts at base, and moves on to the offset the server
// answers.
func (ci *chunkImport) sendChunk(ctx context.Context, chunk []byte, last bool) error {
	resp, err := ci.svc.ImportData(ctx, connect.NewRequest(&vssv1.ImportDataRequest{ImportId: ci.id, Offset: ci.base, Chunk: chunk, Last: last}))
	if err != nil {
		return ci.importError(err)
	}
	before := ci.base
	if err := ci.advance(resp.Msg); err != nil {
		return err
	}
	if !ci.done() && ci.base == before && (last || ci.need <= int64(len(chunk))) {
		return fmt.Errorf("import %s: the server committed nothing of a chunk of %d bytes at byte %d and asks for no more", ci.id, len(chunk), before)
	}
	return nil
}

// advance moves to the offset the server expects next: it drops the bytes it committed,
// or, when it expects bytes not read yet (an import resumed), skips them as they come.
func (ci *chunkImport) advance(resp *vssv1.ImportDataResponse) error {
	ci.resp = resp
	committed := resp.GetCommittedOffset()
	held := ci.read - ci.base // bytes held from base on; negative while skipping
	switch {
	case committed < ci.base:
		return fmt.Errorf("import %s: the server expects the dump from byte %d on, before the bytes vssctl still holds (from byte %d): "+
			"is another vssctl running the same import? If not, run the command again", ci.id, committed, ci.base)
	case committed-ci.base <= held:
		ci.buf = append(ci.buf[:0], ci.buf[committed-ci.base:]...)
	default:
		ci.buf = ci.buf[:0]
	}
	ci.base, ci.need = committed, resp.GetNextRecordBytes()
	if ci.progress != nil {
		ci.progress(resp)
	}
	return nil
}

// probe asks the server where an import it may have begun earlier stands, with an
// empty chunk at an offset no import ever expects (1, inside the magic number): the
// server answers with the offset it expects, or refuses with FAILED_PRECONDITION when it
// has no import of that id in progress, which then starts at 0. The bytes before the
// offset are then read (and checked) but not sent again.
func (ci *chunkImport) probe(ctx context.Context) error {
	resp, err := ci.svc.ImportData(ctx, connect.NewRequest(&vssv1.ImportDataRequest{ImportId: ci.id, Offset: 1}))
	switch {
	case connect.CodeOf(err) == connect.CodeFailedPrecondition:
		return nil
	case err != nil:
		return ci.importError(err)
	case resp.Msg.GetDone():
		return fmt.Errorf("import %s: the server says it is complete before anything was sent", ci.id)
	}
	return ci.advance(resp.Msg)
}

// abort gives the import up: the server removes what it wrote.
func (ci *chunkImport) abort(ctx context.Context) error {
	_, err := ci.svc.ImportData(ctx, connect.NewRequest(&vssv1.ImportDataRequest{ImportId: ci.id, Abort: true}))
	return err
}

// importError adds to a refusal of ImportData the server's URL and what the user can
// do about it. The
// server refuses a store that is not empty, and gives up an import whose stores do not
// match the dump (the source changed since an interrupted run), with
// FAILED_PRECONDITION; a bad dump with INVALID_ARGUMENT. It keeps nothing of an import
// it refuses or gives up.
func (ci *chunkImport) importError(err error) error {
	err = fmt.Errorf("import into %s: %w", ci.to, err)
	switch connect.CodeOf(err) {
	case connect.CodeFailedPrecondition:
		hint := "run the command again to start the import afresh"
		if strings.Contains(err.Error(), "not empty") {
			hint = "every store of the dump must be empty on the target: delete the store there first if it holds " +
				"nothing you need (vssctl delete-store STORE_ID; vssctl export keeps a copy), or import elsewhere"
		}
		return exitError{exitPrecondition, fmt.Errorf("%w\n%s", err, hint)}
	case connect.CodeInvalidArgument:
		return exitError{exitInvalid, fmt.Errorf("the server refused the import: %w", err)}
	case connect.CodeUnimplemented:
		return fmt.Errorf("%w (this server cannot import dumps: give the /vss URL of its VSS HTTP API to import key by key, with new versions)", err)
	}
	return err
}
