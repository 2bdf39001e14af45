package dump

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dumpv1 "github.com/govss/vss/gen/vss/dump/v1"
)

// Writer writes a dump to an io.Writer, one record at a time: NewWriter writes the
// magic number and the header, then each store is BeginStore, Entry for each of its
// entries in creation order (oldest first), EndStore; Close writes the trailer. It
// checks what it is given as a Reader would, so that it never writes a dump that a
// Reader refuses, and computes the checksums. A Writer is not safe for concurrent use.
type Writer struct {
	w       io.Writer
	scope   Scope
	buf     []byte
	err     error // the first error, after which every call fails
	open    bool  // a store is open
	written bool  // a store was written (last is valid)
	last    Store
	store   *StoreHash
	dump    *dumpHash
	stores  uint64
	entries uint64
}

// ErrWriterState is returned by a Writer's methods called out of order, or after an
// earlier call failed.
var ErrWriterState = errors.New("dump: writer used out of order")

// NewWriter writes the magic number and h to w and returns a Writer for the rest.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if h.Scope != ScopeUser && h.Scope != ScopeDatabase {
		return nil, fmt.Errorf("%w: unknown scope %v", ErrWriterState, h.Scope)
	}
	dw := &Writer{w: w, scope: h.Scope, dump: newDumpHash()}
	if _, err := io.WriteString(w, Magic); err != nil {
		return nil, err
	}
	hdr := &dumpv1.Header{
		FormatVersion:  FormatVersion,
		Producer:       h.Producer,
		Scope:          dumpv1.Scope(h.Scope),
		Snapshot:       h.Snapshot,
		ListingOrder:   h.ListingOrder,
		Versions:       h.Versions,
		GlobalVersions: h.GlobalVersions,
	}
	if !h.Created.IsZero() {
		hdr.CreatedAt = timestamppb.New(h.Created)
	}
	if err := dw.record(&dumpv1.Record{Kind: &dumpv1.Record_Header{Header: hdr}}); err != nil {
		return nil, err
	}
	return dw, nil
}

// record writes one length-delimited record.
func (w *Writer) record(r *dumpv1.Record) error {
	size := proto.Size(r)
	buf := binary.AppendUvarint(w.buf[:0], uint64(size))
	buf, err := proto.MarshalOptions{Deterministic: true, UseCachedSize: true}.MarshalAppend(buf, r)
	if err != nil {
		return w.fail(err)
	}
	if cap(buf) <= 1<<20 {
		w.buf = buf // keep small buffers; let a large value's go
	}
	if _, err := w.w.Write(buf); err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

func (w *Writer) misuse(format string, args ...any) error {
	return w.fail(fmt.Errorf("%w: "+format, append([]any{ErrWriterState}, args...)...))
}

// BeginStore opens store s. Stores must come in increasing (User, ID) order.
func (w *Writer) BeginStore(s Store) error {
	switch {
	case w.err != nil:
		return w.err
	case w.open:
		return w.misuse("store %q is still open", w.last.ID)
	case w.written && !storeAfter(w.last, s):
		return w.misuse("store (%q, %q) does not follow (%q, %q)", s.User, s.ID, w.last.User, w.last.ID)
	}
	if err := checkStore(w.scope, s); err != nil {
		return w.misuse("%v", err)
	}
	begin := &dumpv1.StoreBegin{User: s.User, StoreId: s.ID}
	if s.HasGlobalVersion {
		begin.GlobalVersion = &s.GlobalVersion
	}
	if err := w.record(&dumpv1.Record{Kind: &dumpv1.Record_StoreBegin{StoreBegin: begin}}); err != nil {
		return err
	}
	w.open, w.written, w.last = true, true, s
	w.store = NewStoreHash(s)
	return nil
}

// Entry writes the next entry of the open store. Entries come oldest first.
func (w *Writer) Entry(e Entry) error {
	switch {
	case w.err != nil:
		return w.err
	case !w.open:
		return w.misuse("entry %q outside a store", e.Key)
	}
	if err := checkEntry(w.last, e); err != nil {
		return w.misuse("%v", err)
	}
	r := &dumpv1.Record{Kind: &dumpv1.Record_Entry{Entry: &dumpv1.Entry{Key: e.Key, Version: e.Version, Value: e.Value}}}
	if err := w.record(r); err != nil {
		return err
	}
	w.store.Add(e)
	w.entries++
	return nil
}

// EndStore closes the open store and returns its count and checksum.
func (w *Writer) EndStore() (Sum, error) {
	switch {
	case w.err != nil:
		return Sum{}, w.err
	case !w.open:
		return Sum{}, w.misuse("no store is open")
	}
	sum := w.store.Sum()
	end := &dumpv1.StoreEnd{Entries: sum.Entries, Sha256: sum.SHA256[:]}
	if err := w.record(&dumpv1.Record{Kind: &dumpv1.Record_StoreEnd{StoreEnd: end}}); err != nil {
		return Sum{}, err
	}
	w.dump.add(w.last, sum.SHA256)
	w.open, w.store = false, nil
	w.stores++
	return sum, nil
}

// Close writes the trailer and returns the dump's counts and checksum. It does not
// close the underlying io.Writer.
func (w *Writer) Close() (Sum, error) {
	switch {
	case w.err != nil:
		return Sum{}, w.err
	case w.open:
		return Sum{}, w.misuse("store %q is still open", w.last.ID)
	}
	sum := Sum{Stores: w.stores, Entries: w.entries, SHA256: w.dump.sum()}
	tr := &dumpv1.Trailer{Stores: sum.Stores, Entries: sum.Entries, Sha256: sum.SHA256[:]}
	if err := w.record(&dumpv1.Record{Kind: &dumpv1.Record_Trailer{Trailer: tr}}); err != nil {
		return Sum{}, err
	}
	w.err = w.misuse("the dump is closed")
	return sum, nil
}
