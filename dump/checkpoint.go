package dump

import (
	"bufio"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// checkpoint is a Reader's state at a record boundary: everything it needs to go on
// checking the rest of the dump.
type checkpoint struct {
	Format  int    `json:"format"`
	Header  Header `json:"header"`
	Offset  int64  `json:"offset"`
	Records int64  `json:"records"`
	Open    bool   `json:"open"`
	Seen    bool   `json:"seen"`
	Store   Store  `json:"store"`
	// StoreHash and StoreEntries are the open store's checksum state and count.
	StoreHash    []byte `json:"store_hash,omitempty"`
	StoreEntries uint64 `json:"store_entries,omitempty"`
	DumpHash     []byte `json:"dump_hash"`
	Stores       uint64 `json:"stores"`
	Entries      uint64 `json:"entries"`
}

// ErrNoCheckpoint is the error of Checkpoint when the Reader is not at a record boundary
// it can resume from: it refused the dump, or it has read it to the end.
var ErrNoCheckpoint = errors.New("dump: no checkpoint: the reader failed on a bad dump or has finished")

// Checkpoint returns the Reader's state after the last record it read completely, as
// bytes that Resume takes to go on reading the dump from Offset, in another Reader,
// process or server, checking it exactly as this Reader would have. It may be taken
// between records, and after the input ended or failed inside a record (a dump sent in
// chunks: the rest of that record comes with the next chunk); not after a bad dump was
// refused, nor after the end. The bytes hold checksum states, not content, and are for
// the program that took them: they are not meant to cross a trust boundary.
func (r *Reader) Checkpoint() ([]byte, error) {
	if (r.err != nil && !r.readFailed) || r.done {
		return nil, ErrNoCheckpoint
	}
	records := r.n
	if r.readFailed {
		records-- // the record being read is not complete
	}
	cp := checkpoint{Format: FormatVersion, Header: r.header, Offset: r.off, Records: records,
		Open: r.open, Seen: r.seen, Store: r.store, Stores: r.stores, Entries: r.entries}
	var err error
	if cp.DumpHash, err = r.dh.h.(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
		return nil, err
	}
	if r.open {
		cp.StoreEntries = r.sh.n
		if cp.StoreHash, err = r.sh.h.(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
			return nil, err
		}
	}
	return json.Marshal(cp)
}

// PendingRecord returns, after the input ended inside a record, how many bytes that
// record takes with its length prefix (0 when even the prefix was cut): what the next
// chunk of a dump sent in chunks must hold at least.
func (r *Reader) PendingRecord() int64 {
	if !r.readFailed {
		return 0
	}
	return r.pending
}

// Truncated reports whether err is the end of a chunk rather than a bad dump: the input
// ended (inside a record or between two) before the trailer. A reader of a dump sent in
// chunks treats it as "wait for the next chunk" unless the chunk was the last.
func Truncated(err error) bool { return errors.Is(err, ErrTruncated) }

// Resume returns a Reader that goes on from a Checkpoint: in must deliver the dump from
// the checkpoint's offset on. The Reader checks the rest of the dump as the one that
// took the checkpoint would have, and its Offset counts from the dump's first byte.
func Resume(in io.Reader, cp []byte, opts ReaderOptions) (*Reader, error) {
	var c checkpoint
	if err := json.Unmarshal(cp, &c); err != nil {
		return nil, fmt.Errorf("dump: bad checkpoint: %w", err)
	}
	if c.Format != FormatVersion || c.Offset < int64(len(Magic)) || c.Records < 1 {
		return nil, fmt.Errorf("dump: bad checkpoint: format %d at offset %d", c.Format, c.Offset)
	}
	r := &Reader{r: bufio.NewReaderSize(in, 64<<10), max: opts.MaxRecordBytes, header: c.Header,
		off: c.Offset, n: c.Records, open: c.Open, seen: c.Seen, store: c.Store,
		stores: c.Stores, entries: c.Entries, dh: newDumpHash()}
	if r.max <= 0 {
		r.max = DefaultMaxRecordBytes
	}
	if err := r.dh.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(c.DumpHash); err != nil {
		return nil, fmt.Errorf("dump: bad checkpoint: %w", err)
	}
	if c.Open {
		r.sh = &StoreHash{h: sha256.New(), n: c.StoreEntries}
		if err := r.sh.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(c.StoreHash); err != nil {
			return nil, fmt.Errorf("dump: bad checkpoint: %w", err)
		}
	}
	return r, nil
}
