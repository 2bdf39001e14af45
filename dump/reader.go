package dump

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	dumpv1 "github.com/govss/vss/gen/vss/dump/v1"
)

// Kind is the kind of record Reader.Next read.
type Kind int

const (
	// KindStore is a StoreBegin: Reader.Store returns it.
	KindStore Kind = iota + 1
	// KindEntry is an Entry of the current store: Reader.Entry returns it.
	KindEntry
	// KindStoreEnd is a StoreEnd whose count and checksum matched: Reader.Sum returns them.
	KindStoreEnd
	// KindEnd is the Trailer, whose counts and checksum matched, followed by the end of
	// the input: Reader.Sum returns them. Next returns io.EOF afterwards.
	KindEnd
)

// ReaderOptions tune a Reader. The zero value is the defaults.
type ReaderOptions struct {
	// MaxRecordBytes is the largest record accepted; 0 means DefaultMaxRecordBytes.
	MaxRecordBytes int
}

// Reader reads a dump from an io.Reader one record at a time and checks it as it goes.
// A dump has been read completely, and every checksum verified, only when Next returns
// KindEnd; any error before that means the dump must not be trusted, and a consumer
// that applies records as they come (an import) must be able to undo or resume them.
// After an error, every call of Next returns it again. A Reader is not safe for
// concurrent use.
type Reader struct {
	r      *bufio.Reader
	max    int
	buf    []byte
	off    int64 // bytes consumed
	n      int64 // records read, the header being 1
	header Header
	err    error
	done   bool

	// readFailed tells that r.err came from reading a record (the input ended or
	// failed inside it), so that the state is still that of the record boundary before
	// it and a Checkpoint can be taken; pending is the length of that record, when its
	// length prefix was read.
	readFailed bool
	pending    int64

	open    bool
	seen    bool // a store was read (store is the last one)
	store   Store
	entry   Entry
	sum     Sum
	sh      *StoreHash
	dh      *dumpHash
	stores  uint64
	entries uint64
}

// NewReader reads the magic number and the header from r and returns a Reader for the
// rest of the dump.
func NewReader(r io.Reader, opts ReaderOptions) (*Reader, error) {
	dr := &Reader{r: bufio.NewReaderSize(r, 64<<10), max: opts.MaxRecordBytes, dh: newDumpHash()}
	if dr.max <= 0 {
		dr.max = DefaultMaxRecordBytes
	}
	var magic [len(Magic)]byte
	n, err := io.ReadFull(dr.r, magic[:])
	if !bytes.Equal(magic[:n], []byte(Magic[:n])) {
		return nil, dr.errorf(ErrNotDump, "the input does not start with the VSS dump magic number")
	}
	if err != nil {
		return nil, dr.errorf(ErrTruncated, "the input ends inside the magic number")
	}
	dr.off = int64(len(Magic))
	rec, err := dr.read()
	if err != nil {
		return nil, err
	}
	h := rec.GetHeader()
	if h == nil {
		return nil, dr.errorf(ErrOrder, "the first record is not a header")
	}
	if h.GetFormatVersion() != FormatVersion {
		return nil, dr.errorf(ErrVersion, "format version %d, this reader knows %d", h.GetFormatVersion(), FormatVersion)
	}
	scope := Scope(h.GetScope())
	if scope != ScopeUser && scope != ScopeDatabase {
		return nil, dr.errorf(ErrInvalid, "unknown scope %d", int(h.GetScope()))
	}
	dr.header = Header{
		Producer:       h.GetProducer(),
		Scope:          scope,
		Snapshot:       h.GetSnapshot(),
		ListingOrder:   h.GetListingOrder(),
		Versions:       h.GetVersions(),
		GlobalVersions: h.GetGlobalVersions(),
	}
	if h.CreatedAt != nil {
		if err := h.CreatedAt.CheckValid(); err != nil {
			return nil, dr.errorf(ErrInvalid, "created_at: %v", err)
		}
		dr.header.Created = h.CreatedAt.AsTime()
	}
	return dr, nil
}

// Header returns the dump's header.
func (r *Reader) Header() Header { return r.header }

// Store returns the store opened last: after KindStore, and during its entries.
func (r *Reader) Store() Store { return r.store }

// Entry returns the entry read last (after KindEntry). Its Value is a slice of its own,
// which the caller may keep.
func (r *Reader) Entry() Entry { return r.entry }

// Sum returns the count and checksum of the store closed last (after KindStoreEnd), or
// of the whole dump (after KindEnd).
func (r *Reader) Sum() Sum { return r.sum }

// Offset returns the number of bytes of the dump consumed so far: after a record, the
// offset of the next one. It counts from the dump's first byte, also for a Reader made by
// Resume.
func (r *Reader) Offset() int64 { return r.off }

// StoreEntries returns how many entries of the open store have been read, the last one
// Next returned included.
func (r *Reader) StoreEntries() int64 {
	if !r.open {
		return 0
	}
	return int64(r.sh.n)
}

// Counts returns how many stores (closed by a matching StoreEnd) and entries have been
// read so far.
func (r *Reader) Counts() (stores, entries uint64) { return r.stores, r.entries }

// InStore reports whether a store is open: its StoreBegin has been read and its
// StoreEnd has not.
func (r *Reader) InStore() bool { return r.open }

func (r *Reader) errorf(kind error, format string, args ...any) error {
	r.err = &FormatError{Err: kind, Offset: r.off, Record: r.n, Reason: fmt.Sprintf(format, args...)}
	return r.err
}

// read reads the next record, counting it.
func (r *Reader) read() (*dumpv1.Record, error) {
	r.n++
	size, err := r.readUvarint()
	switch {
	case err != nil:
		var fe *FormatError
		r.readFailed = !errors.As(err, &fe) || errors.Is(err, ErrTruncated)
		return nil, err
	case size > uint64(r.max):
		return nil, r.errorf(ErrTooLarge, "a record of %d bytes, more than the limit of %d", size, r.max)
	}
	if cap(r.buf) < int(size) {
		r.buf = make([]byte, size)
	}
	buf := r.buf[:size]
	if _, err := io.ReadFull(r.r, buf); err != nil {
		r.readFailed, r.pending = true, int64(uvarintLen(size))+int64(size)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, r.errorf(ErrTruncated, "the input ends inside a record of %d bytes", size)
		}
		r.err = err
		return nil, err
	}
	rec := new(dumpv1.Record)
	if err := proto.Unmarshal(buf, rec); err != nil {
		return nil, r.errorf(ErrInvalid, "the record does not decode: %v", err)
	}
	if cap(r.buf) > 1<<20 {
		r.buf = nil // let a large value's buffer go once it is decoded
	}
	r.off += int64(uvarintLen(size)) + int64(size)
	return rec, nil
}

// readUvarint reads a record's length: an unsigned varint of at most 10 bytes.
func (r *Reader) readUvarint() (uint64, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := r.r.ReadByte()
		if errors.Is(err, io.EOF) {
			return 0, r.errorf(ErrTruncated, "the input ends before the trailer")
		}
		if err != nil {
			r.err = err // a failure of the underlying reader, not of the dump
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && b > 1 {
			break
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, r.errorf(ErrInvalid, "the record length does not fit in 64 bits")
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

// Next reads and checks the next record and returns its kind. It returns io.EOF after
// KindEnd, a *FormatError for a bad dump, and the underlying reader's error if reading
// fails for another reason.
func (r *Reader) Next() (Kind, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.done {
		return 0, io.EOF
	}
	rec, err := r.read()
	if err != nil {
		return 0, err
	}
	switch k := rec.GetKind().(type) {
	case *dumpv1.Record_Header:
		return 0, r.errorf(ErrOrder, "a second header")
	case *dumpv1.Record_StoreBegin:
		return r.storeBegin(k.StoreBegin)
	case *dumpv1.Record_Entry:
		return r.entryRecord(k.Entry)
	case *dumpv1.Record_StoreEnd:
		return r.storeEnd(k.StoreEnd)
	case *dumpv1.Record_Trailer:
		return r.trailer(k.Trailer)
	default:
		return 0, r.errorf(ErrInvalid, "a record of no kind this reader knows")
	}
}

func (r *Reader) storeBegin(b *dumpv1.StoreBegin) (Kind, error) {
	s := Store{User: b.GetUser(), ID: b.GetStoreId()}
	if b.GlobalVersion != nil {
		s.GlobalVersion, s.HasGlobalVersion = *b.GlobalVersion, true
	}
	switch {
	case r.open:
		return 0, r.errorf(ErrOrder, "store %q begins before store %q ends", s.ID, r.store.ID)
	case r.seen && !storeAfter(r.store, s):
		return 0, r.errorf(ErrOrder, "store (%q, %q) does not follow (%q, %q)", s.User, s.ID, r.store.User, r.store.ID)
	}
	if err := checkStore(r.header.Scope, s); err != nil {
		return 0, r.errorf(ErrInvalid, "%v", err)
	}
	r.open, r.seen, r.store = true, true, s
	r.sh = NewStoreHash(s)
	return KindStore, nil
}

func (r *Reader) entryRecord(e *dumpv1.Entry) (Kind, error) {
	if !r.open {
		return 0, r.errorf(ErrOrder, "entry %q outside a store", e.GetKey())
	}
	entry := Entry{Key: e.GetKey(), Version: e.GetVersion(), Value: e.GetValue()}
	if err := checkEntry(r.store, entry); err != nil {
		return 0, r.errorf(ErrInvalid, "entry: %v", err)
	}
	r.sh.Add(entry)
	r.entries++
	r.entry = entry
	return KindEntry, nil
}

func (r *Reader) storeEnd(e *dumpv1.StoreEnd) (Kind, error) {
	if !r.open {
		return 0, r.errorf(ErrOrder, "a store end without a store")
	}
	sum := r.sh.Sum()
	switch {
	case e.GetEntries() != sum.Entries:
		return 0, r.errorf(ErrChecksum, "store %q states %d entries, the dump holds %d", r.store.ID, e.GetEntries(), sum.Entries)
	case !bytes.Equal(e.GetSha256(), sum.SHA256[:]):
		return 0, r.errorf(ErrChecksum, "store %q: the entries do not match the store's SHA-256", r.store.ID)
	}
	r.dh.add(r.store, sum.SHA256)
	r.open, r.sh, r.sum = false, nil, sum
	r.stores++
	return KindStoreEnd, nil
}

func (r *Reader) trailer(t *dumpv1.Trailer) (Kind, error) {
	if r.open {
		return 0, r.errorf(ErrOrder, "the trailer comes before store %q ends", r.store.ID)
	}
	sum := Sum{Stores: r.stores, Entries: r.entries, SHA256: r.dh.sum()}
	switch {
	case t.GetStores() != sum.Stores || t.GetEntries() != sum.Entries:
		return 0, r.errorf(ErrChecksum, "the trailer states %d stores and %d entries, the dump holds %d and %d",
			t.GetStores(), t.GetEntries(), sum.Stores, sum.Entries)
	case !bytes.Equal(t.GetSha256(), sum.SHA256[:]):
		return 0, r.errorf(ErrChecksum, "the stores do not match the dump's SHA-256")
	}
	// Nothing may follow the trailer: a dump concatenated with anything is not a dump.
	if _, err := r.r.ReadByte(); err == nil {
		r.n++
		return 0, r.errorf(ErrOrder, "data after the trailer")
	} else if !errors.Is(err, io.EOF) {
		r.err = err
		return 0, err
	}
	r.sum, r.done = sum, true
	return KindEnd, nil
}
