package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/govss/vss/dump"
	"github.com/govss/vss/storage"
)

// Target is a store that a dump is imported into: it imports, and it exports what it
// holds so that each store is verified by checksum once imported.
type Target interface {
	storage.Importer
	storage.Exporter
}

// Default batch of an import: a transaction commits at most this many entries or, past
// the first entry, this many bytes of values.
const (
	DefaultBatchEntries = 256
	DefaultBatchBytes   = 4 << 20
)

// ImportOptions tune Import.
type ImportOptions struct {
	// User is the user a SCOPE_USER dump is written for. It must be empty for a
	// SCOPE_DATABASE dump, whose stores name their users.
	User string
	// ImportID names the import (see storage.Importer): importing the same data again
	// under the same id resumes it. Required.
	ImportID string
	// Partial tells that the input may end before the dump does (a dump sent in
	// chunks): Import then commits what it read and returns a Result that is not Done,
	// with the checkpoint to resume from, instead of refusing a truncated dump.
	Partial bool
	// BatchEntries and BatchBytes bound a transaction (0: the defaults).
	BatchEntries int
	BatchBytes   int
	// Progress, if set, is called after each committed batch and each store.
	Progress func(Result)
}

// Result tells how far an import got.
type Result struct {
	// Done is true when the whole dump was imported and verified.
	Done bool
	// Sum is the dump's sum, when Done.
	Sum dump.Sum
	// Offset is the number of bytes of the dump read and committed: where a dump sent
	// in chunks continues.
	Offset int64
	// Checkpoint is the reader's state at Offset, when not Done (see dump.Resume).
	Checkpoint []byte
	// Pending is the size of the record cut at Offset, when the input ended inside it.
	Pending int64
	// Stores and Entries count what the dump held up to Offset; Written counts the
	// entries written by this call (entries committed by an earlier attempt are
	// skipped, not written again).
	Stores, Entries, Written uint64
}

// Import reads the dump r and writes it into dst: every store must be empty when its
// import begins, or hold the records of an earlier attempt of the same ImportID, which
// is then resumed: completed stores are checked against the dump's checksums, and the
// store in progress continues after the entries it committed. Each store, once
// imported, is read back and its checksum compared with the dump's.
//
// A bad dump (a *dump.FormatError, an entry over the key limits once the user is known),
// a store that is not empty, a quota exceeded or a store that does not match (ErrMismatch)
// gives the import up: everything it wrote is removed (storage.Importer.AbortImport)
// and the error returned. Any other error (the context, the database, the input
// failing) leaves the import to be resumed.
func Import(ctx context.Context, dst Target, r *dump.Reader, opts ImportOptions) (Result, error) {
	im := &importer{dst: dst, r: r, opts: opts}
	if im.opts.BatchEntries <= 0 {
		im.opts.BatchEntries = DefaultBatchEntries
	}
	if im.opts.BatchBytes <= 0 {
		im.opts.BatchBytes = DefaultBatchBytes
	}
	res, err := im.run(ctx)
	if err != nil && givesUp(err) {
		if _, aerr := dst.AbortImport(context.WithoutCancel(ctx), im.abortUser(), opts.ImportID); aerr != nil {
			return res, fmt.Errorf("%w (and removing what the import wrote failed: %v)", err, aerr)
		}
	}
	return res, err
}

// givesUp reports whether err ends an import for good rather than interrupting it.
func givesUp(err error) bool {
	var fe *dump.FormatError
	var qe *storage.QuotaError
	return errors.As(err, &fe) || errors.As(err, &qe) || errors.Is(err, storage.ErrNotEmpty) || errors.Is(err, ErrMismatch)
}

type importer struct {
	dst  Target
	r    *dump.Reader
	opts ImportOptions

	user      string // the user of the open store
	store     dump.Store
	state     storage.ImportState
	committed int64 // entries of the open store the target holds
	batch     []storage.KeyValue
	bytes     int
	written   uint64
}

func (im *importer) abortUser() string {
	if im.r.Header().Scope == dump.ScopeDatabase {
		return storage.AllUsers
	}
	return im.opts.User
}

func (im *importer) result() Result {
	stores, entries := im.r.Counts()
	return Result{Offset: im.r.Offset(), Written: im.written, Stores: stores, Entries: entries}
}

func (im *importer) run(ctx context.Context) (Result, error) {
	switch scope := im.r.Header().Scope; {
	case im.opts.ImportID == "":
		return im.result(), errors.New("transfer: an import needs an id")
	case scope == dump.ScopeUser && im.opts.User == "":
		return im.result(), errors.New("transfer: a dump of one user's stores needs the user to import them for")
	case scope == dump.ScopeDatabase && im.opts.User != "":
		return im.result(), errors.New("transfer: a dump of a whole database names its users: import it without a user")
	}
	if im.r.InStore() { // resumed inside a store
		if err := im.begin(ctx, im.r.Store()); err != nil {
			return im.result(), err
		}
		if n := im.r.StoreEntries(); !im.state.Done && im.committed < n {
			return im.result(), fmt.Errorf("transfer: store %q holds %d entries of import %q where the dump was read up to %d: start again from the beginning: %w",
				im.store.ID, im.committed, im.opts.ImportID, n, storage.ErrConflict)
		}
	}
	for {
		k, err := im.r.Next()
		if err != nil {
			if im.opts.Partial && dump.Truncated(err) {
				return im.pause(ctx)
			}
			return im.result(), err
		}
		switch k {
		case dump.KindStore:
			err = im.begin(ctx, im.r.Store())
		case dump.KindEntry:
			err = im.entry(ctx, im.r.Entry())
		case dump.KindStoreEnd:
			err = im.end(ctx, im.r.Sum())
		case dump.KindEnd:
			sum := im.r.Sum()
			if err := im.dst.FinishImport(ctx, im.abortUser(), im.opts.ImportID); err != nil {
				return im.result(), err
			}
			res := im.result()
			res.Done, res.Sum, res.Stores, res.Entries = true, sum, sum.Stores, sum.Entries
			im.progress(res)
			return res, nil
		}
		if err != nil {
			return im.result(), err
		}
	}
}

// pause commits what was read when the input ended before the dump did, and returns
// where to continue.
func (im *importer) pause(ctx context.Context) (Result, error) {
	if err := im.flush(ctx); err != nil {
		return im.result(), err
	}
	res := im.result()
	cp, err := im.r.Checkpoint()
	if err != nil {
		return res, err
	}
	res.Checkpoint, res.Pending = cp, im.r.PendingRecord()
	return res, nil
}

func (im *importer) progress(res Result) {
	if im.opts.Progress != nil {
		im.opts.Progress(res)
	}
}

func (im *importer) begin(ctx context.Context, s dump.Store) error {
	im.user, im.store = im.opts.User, s
	if s.User != "" {
		im.user = s.User
	}
	st := storage.ExportStore{ID: s.ID, GlobalVersion: s.GlobalVersion, HasGlobalVersion: s.HasGlobalVersion}
	state, err := im.dst.BeginImport(ctx, im.user, im.opts.ImportID, st)
	if err != nil {
		return err
	}
	im.state, im.committed, im.batch, im.bytes = state, state.Entries, im.batch[:0], 0
	return nil
}

func (im *importer) entry(ctx context.Context, e dump.Entry) error {
	// The dump checks the store id and key; the user is known only now.
	if n := len(im.user) + len(im.store.ID) + len(e.Key); n > dump.MaxEntryBytes {
		return &dump.FormatError{Err: dump.ErrInvalid, Offset: im.r.Offset(), Reason: fmt.Sprintf(
			"the user, store id %q and key %q take %d bytes, more than %d", im.store.ID, e.Key, n, dump.MaxEntryBytes)}
	}
	if im.state.Done || im.r.StoreEntries() <= im.committed+int64(len(im.batch)) {
		return nil // committed by an earlier attempt
	}
	im.batch = append(im.batch, storage.KeyValue{Key: e.Key, Version: e.Version, Value: e.Value})
	im.bytes += len(e.Value)
	if len(im.batch) >= im.opts.BatchEntries || im.bytes >= im.opts.BatchBytes {
		return im.flush(ctx)
	}
	return nil
}

// flush commits the batch of the open store.
func (im *importer) flush(ctx context.Context) error {
	if len(im.batch) == 0 {
		return nil
	}
	if err := im.dst.ImportEntries(ctx, im.user, im.opts.ImportID, im.store.ID, im.committed, im.batch); err != nil {
		return err
	}
	im.committed += int64(len(im.batch))
	im.written += uint64(len(im.batch))
	clear(im.batch) // let the values go
	im.batch, im.bytes = im.batch[:0], 0
	im.progress(im.result())
	return nil
}

// end closes a store whose StoreEnd matched: it commits the rest, reads the store back
// and compares its checksum, and marks it complete. A store completed by an earlier
// attempt is compared with the checksum recorded then.
func (im *importer) end(ctx context.Context, sum dump.Sum) error {
	if im.state.Done {
		if !bytes.Equal(im.state.SHA256, sum.SHA256[:]) {
			return fmt.Errorf("store %q was imported from other data than this dump holds: %w", im.store.ID, ErrMismatch)
		}
		return nil
	}
	if err := im.flush(ctx); err != nil {
		return err
	}
	got, err := StoreSum(ctx, im.dst, im.user, im.store.ID)
	if err != nil {
		return err
	}
	if got != (dump.Sum{Entries: sum.Entries, SHA256: sum.SHA256}) {
		return fmt.Errorf("store %q holds %d entries (SHA-256 %x) where the dump states %d (%x): %w",
			im.store.ID, got.Entries, got.SHA256, sum.Entries, sum.SHA256, ErrMismatch)
	}
	if err := im.dst.EndImport(ctx, im.user, im.opts.ImportID, im.store.ID, sum.SHA256[:]); err != nil {
		return err
	}
	im.progress(im.result())
	return nil
}
