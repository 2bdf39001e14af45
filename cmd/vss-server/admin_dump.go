package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/govss/vss/dump"
	"github.com/govss/vss/internal/app"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/transfer"
)

// This file holds `vss-server admin export` and `vss-server admin import`: they move a
// store's data, one user's or every user's, through a VSS dump (docs/dump-format.md),
// between any two stores, embedded or PostgreSQL. The rules of a move are transfer's;
// what is here is files, messages and progress.

// dumpProducer names this program in the header of the dumps it writes.
func dumpProducer() string { return "vss-server " + build().Version }

// exportSource is a store that admin export reads.
type exportSource interface {
	storage.Exporter
	storage.Admin
}

// exportOptions are the flags of admin export.
type exportOptions struct {
	// user is the user whose stores are exported, or empty for every user.
	user string
	// out is the file to write, or "" or "-" for standard output.
	out string
	// checksumOnly writes no dump and prints its SHA-256 on standard output.
	checksumOnly bool
}

// runExport runs `vss-server admin export` and returns its exit code.
func runExport(ctx context.Context, f *adminFlags, o exportOptions, stdout, stderr io.Writer, terminal bool) int {
	const name = "vss-server admin export"
	toStdout := !o.checksumOnly && (o.out == "" || o.out == "-")
	if toStdout && isTerminalOutput(stdout) {
		fmt.Fprintf(stderr, "%s: standard output is a terminal, and a dump is binary: give --out FILE, redirect standard output, or use --checksum-only\n", name)
		return 2
	}
	cfg, err := f.serverConfig()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	store, where, err := f.openStore(ctx, cfg, false)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer store.Close()
	src, ok := store.(exportSource)
	if !ok {
		fmt.Fprintf(stderr, "%s: %s cannot export its data\n", name, where)
		return 1
	}
	if o.user != "" {
		// A user that stores nothing is most likely a mistyped one: refuse rather than
		// write an empty dump (whose checksum would "prove" a move of nothing).
		usage, err := src.Usage(ctx, o.user)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 1
		}
		if len(usage) == 0 {
			fmt.Fprintf(stderr, "%s: user %q stores nothing in %s: nothing exported\n", name, o.user, where)
			return 1
		}
	}

	var out *dumpOutput
	switch {
	case o.checksumOnly:
		out = &dumpOutput{buf: bufio.NewWriterSize(io.Discard, 64<<10)}
	case toStdout:
		out = &dumpOutput{buf: bufio.NewWriterSize(stdout, 1<<20)}
	default:
		if out, err = createDumpFile(o.out); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 1
		}
	}
	p := newProgress(stderr, terminal)
	start := time.Now()
	cw := &countingWriter{w: out.buf}
	var users uint64
	cw.onWrite = func() {
		p.show("exported %s, %s, %s", megabytes(cw.n), count(users, "user", "users"), rate(cw.n, time.Since(start)))
	}
	var sum dump.Sum
	if o.user != "" {
		users = 1
		sum, err = transfer.Export(ctx, src, o.user, cw, dumpProducer())
	} else {
		sum, err = transfer.ExportDatabase(ctx, &countingSource{exportSource: src, users: &users}, cw, dumpProducer())
	}
	if err == nil {
		err = out.commit()
	} else {
		out.discard()
	}
	p.done()
	elapsed := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted (%w)", err)
		}
		fmt.Fprintf(stderr, "%s: %v\n%s: %s\n", name, err, name, out.failed())
		return 1
	}
	if sum.Stores == 0 {
		// Say which store is empty: a store found by mistake is then obvious.
		fmt.Fprintf(stderr, "%s: no entries in %s\n", name, where)
	}
	fmt.Fprintf(stderr, "%s: %s from %s%s\n", name, dumpSummary(users, sum, cw.n, elapsed), where, out.to())
	fmt.Fprintf(stderr, "%s: SHA-256 %x\n", name, sum.SHA256)
	if o.checksumOnly {
		fmt.Fprintf(stdout, "%x\n", sum.SHA256)
	}
	return 0
}

// countingSource counts the users that an export of every user reads.
type countingSource struct {
	exportSource
	users *uint64
}

// ExportUser counts the user, then exports it.
func (c *countingSource) ExportUser(ctx context.Context, user string, v storage.ExportVisitor) error {
	*c.users++
	return c.exportSource.ExportUser(ctx, user, v)
}

// dumpOutput is where an export writes: standard output, nothing (--checksum-only), a
// file that is not a regular file (a device such as /dev/null, a pipe), written as it
// is, or a regular file, written as FILE.partial, flushed to disk and renamed FILE once
// complete, so that a file of that name is always a complete dump: an export that is
// killed leaves FILE.partial, which no one takes for a dump.
type dumpOutput struct {
	buf     *bufio.Writer
	name    string   // the file, or "" for standard output and --checksum-only
	file    *os.File // the file written, or nil
	partial string   // the path of FILE.partial, when the file is renamed at the end
}

// createDumpFile opens the file an export writes to name.
func createDumpFile(name string) (*dumpOutput, error) {
	if fi, err := os.Stat(name); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return nil, fmt.Errorf("--out %s is a directory: name the dump file", name)
		}
		f, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &dumpOutput{buf: bufio.NewWriterSize(f, 1<<20), name: name, file: f}, nil
	}
	partial := name + ".partial"
	// A dump holds every user's data (encrypted by the wallets, but still theirs): it is
	// readable by its owner only.
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot write the dump: %w", err)
	}
	return &dumpOutput{buf: bufio.NewWriterSize(f, 1<<20), name: name, file: f, partial: partial}, nil
}

// commit completes the output: it flushes the buffer and, for a file written as
// FILE.partial, syncs it to disk, renames it and syncs its directory, so that FILE
// exists only once it is complete and on disk.
func (o *dumpOutput) commit() error {
	if err := o.buf.Flush(); err != nil {
		o.discard()
		return err
	}
	if o.file == nil {
		return nil
	}
	if o.partial == "" {
		return o.file.Close()
	}
	err := o.file.Sync()
	if cerr := o.file.Close(); err == nil {
		err = cerr
	}
	o.file = nil
	if err == nil {
		err = os.Rename(o.partial, o.name)
	}
	if err != nil {
		o.discard()
		return err
	}
	if d, err := os.Open(filepath.Dir(o.name)); err == nil {
		_ = d.Sync() // the rename on disk; not every file system can sync a directory
		_ = d.Close()
	}
	return nil
}

// discard gives the output up: FILE.partial is removed.
func (o *dumpOutput) discard() {
	if o.file != nil {
		_ = o.file.Close()
		o.file = nil
	}
	if o.partial != "" {
		_ = os.Remove(o.partial)
	}
}

// to describes where the dump went, for the summary.
func (o *dumpOutput) to() string {
	if o.name == "" {
		return ""
	}
	return " to " + o.name
}

// failed says what a failed export left behind.
func (o *dumpOutput) failed() string {
	switch {
	case o.partial != "":
		return "no dump was written (" + o.partial + " was removed)"
	case o.name != "":
		return "what was written to " + o.name + " is not a complete dump"
	}
	return "nothing usable was written: a reader refuses the incomplete dump on standard output"
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w       io.Writer
	n       int64
	onWrite func()
}

// Write writes p, counts what was written and reports it to onWrite.
func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.onWrite != nil {
		c.onWrite()
	}
	return n, err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r      io.Reader
	n      int64
	onRead func()
}

// Read reads into p, counts what was read and reports it to onRead.
func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.onRead != nil {
		c.onRead()
	}
	return n, err
}

// importOptions are the argument and flags of admin import.
type importOptions struct {
	// file is the dump, or "-" for standard input.
	file string
	// user is the user a SCOPE_USER dump is written for; empty for a SCOPE_DATABASE dump.
	user string
	// abort gives up an interrupted import of the dump instead of running it.
	abort bool
}

// importID names the import of a dump with header h: the same dump, read again after
// an interruption, gives the same id, and so resumes (see storage.Importer). The
// header's creation time, to the nanosecond, and producer tell one export from another.
func importID(h dump.Header) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "vss-server admin import\n%q %q %d %t %t %t %t",
		h.Producer, h.Created.UTC().Format(time.RFC3339Nano), int(h.Scope), h.Snapshot, h.ListingOrder, h.Versions, h.GlobalVersions))
	return fmt.Sprintf("admin-%x", sum)
}

// importMaxRecordBytes is the largest record an import accepts: the format's default,
// or more for a server whose --max-body-bytes (from the environment or the
// configuration file) lets it store larger values.
func importMaxRecordBytes(cfg app.Config) int {
	n := int64(dump.DefaultMaxRecordBytes)
	if b := cfg.MaxBodyBytes + 64<<10; b > n {
		n = b
	}
	return int(n)
}

// runImport runs `vss-server admin import` and returns its exit code.
func runImport(ctx context.Context, f *adminFlags, o importOptions, stdin io.Reader, stdout, stderr io.Writer, terminal bool) int {
	const name = "vss-server admin import"
	cfg, err := f.serverConfig()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	in, size := stdin, int64(-1)
	label := "the dump on standard input"
	if o.file != "-" {
		file, err := os.Open(o.file)
		if err != nil {
			fmt.Fprintf(stderr, "%s: cannot read the dump: %v\n", name, err)
			return 1
		}
		defer file.Close()
		fi, err := file.Stat()
		if err != nil {
			fmt.Fprintf(stderr, "%s: cannot read the dump: %v\n", name, err)
			return 1
		}
		if fi.IsDir() {
			fmt.Fprintf(stderr, "%s: cannot read the dump: %s is a directory\n", name, o.file)
			return 1
		}
		if fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in, label = file, o.file
	}
	cr := &countingReader{r: in}
	dr, err := dump.NewReader(cr, dump.ReaderOptions{MaxRecordBytes: importMaxRecordBytes(cfg)})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s is not a dump this server can import: %v\n%s: nothing was imported\n", name, label, err, name)
		return 1
	}
	h := dr.Header()
	switch {
	case h.Scope == dump.ScopeUser && o.user == "":
		fmt.Fprintf(stderr, "%s: %s holds the stores of one user, who is not named in it: give --user, the user to write them for\n", name, label)
		return 2
	case h.Scope == dump.ScopeDatabase && o.user != "":
		fmt.Fprintf(stderr, "%s: %s holds every user's stores, each naming its user: import it without --user "+
			"(to move one user, export that user with --user)\n", name, label)
		return 2
	}
	id := importID(h)
	if o.abort {
		return abortImport(ctx, f, cfg, o, id, label, stdout, stderr)
	}

	store, where, err := f.openStore(ctx, cfg, true)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer store.Close()
	target, ok := store.(transfer.Target)
	if !ok {
		fmt.Fprintf(stderr, "%s: %s cannot import a dump\n", name, where)
		return 1
	}
	w := &watchedTarget{Target: target}
	p := newProgress(stderr, terminal)
	start := time.Now()
	var written uint64
	cr.onRead = func() {
		done := megabytes(cr.n)
		if size > 0 {
			done = fmt.Sprintf("%s of %s (%d%%)", done, megabytes(size), cr.n*100/size)
		}
		p.show("imported %s, %s written, %s", done, count(written, "entry", "entries"), rate(cr.n, time.Since(start)))
	}
	res, err := transfer.Import(ctx, w, dr, transfer.ImportOptions{User: o.user, ImportID: id,
		Progress: func(r transfer.Result) { written = r.Written }})
	p.done()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", name, explainImport(err, ctx.Err() != nil, w, label, res))
		return 1
	}
	resumed := ""
	if res.Written < res.Entries {
		resumed = fmt.Sprintf("; resumed: %s written now, %d by an earlier run", count(res.Written, "entry", "entries"), res.Entries-res.Written)
	}
	fmt.Fprintf(stderr, "%s: %s from %s into %s, every store verified%s\n",
		name, dumpSummary(w.users, res.Sum, res.Offset, time.Since(start)), label, where, resumed)
	fmt.Fprintf(stderr, "%s: SHA-256 %x\n", name, res.Sum.SHA256)
	return 0
}

// abortImport runs `vss-server admin import FILE --abort`: it removes every store that
// the interrupted import of the dump holds.
func abortImport(ctx context.Context, f *adminFlags, cfg app.Config, o importOptions, id, label string, stdout, stderr io.Writer) int {
	const name = "vss-server admin import"
	store, where, err := f.openStore(ctx, cfg, false)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer store.Close()
	im, ok := store.(storage.Importer)
	if !ok {
		fmt.Fprintf(stderr, "%s: %s cannot import a dump\n", name, where)
		return 1
	}
	n, err := im.AbortImport(ctx, o.user, id)
	if err != nil {
		fmt.Fprintf(stderr, "%s: giving up the import of %s: %v\n", name, label, err)
		return 1
	}
	if n == 0 {
		fmt.Fprintf(stdout, "no interrupted import of %s in %s: nothing removed\n", label, where)
		return 0
	}
	fmt.Fprintf(stdout, "gave up the import of %s: removed the %s it had written in %s\n", label, count(n, "store", "stores"), where)
	return 0
}

// watchedTarget is the target of an import, watched for what the messages tell: the
// users and the store being imported, and what giving the import up removed.
type watchedTarget struct {
	transfer.Target
	users       uint64 // users begun, counted as they change (stores come in user order)
	user, store string // the store begun last
	aborted     bool   // AbortImport succeeded
	removed     int64  // the stores it removed
}

// BeginImport notes the store, then begins it.
func (w *watchedTarget) BeginImport(ctx context.Context, user, importID string, st storage.ExportStore) (storage.ImportState, error) {
	if w.users == 0 || user != w.user {
		w.users++
	}
	w.user, w.store = user, st.ID
	return w.Target.BeginImport(ctx, user, importID, st)
}

// AbortImport gives the import up and notes what it removed.
func (w *watchedTarget) AbortImport(ctx context.Context, user, importID string) (int64, error) {
	n, err := w.Target.AbortImport(ctx, user, importID)
	w.aborted, w.removed = err == nil, n
	return n, err
}

// explainImport turns the error of an import into a message that tells the operator
// what happened to the store and what to do; interrupted tells that the import's
// context was cancelled (Ctrl-C).
func explainImport(err error, interrupted bool, w *watchedTarget, label string, res transfer.Result) string {
	removed := "Nothing of it was imported"
	if w.removed > 0 {
		removed = "Nothing of it is kept: the import removed what it had written (" + count(w.removed, "store", "stores") + ")"
	}
	if !w.aborted {
		// The import was to be given up, but removing what it wrote failed (the error
		// says why): the stores are still there, under the import's records.
		removed = "Removing what the import wrote failed: run the same command with --abort to remove it"
	}
	var fe *dump.FormatError
	var qe *storage.QuotaError
	switch {
	case errors.As(err, &fe):
		return fmt.Sprintf("%s is not a valid dump: %v.\n%s.", label, err, removed)
	case errors.Is(err, storage.ErrNotEmpty):
		return fmt.Sprintf("%v (user %q): an import writes only into empty stores.\n%s. "+
			"If that store's data is to be replaced, delete it first (vss-server admin delete-user); if it is what an "+
			"interrupted import of another dump wrote, give that import up (vss-server admin import THAT-DUMP --abort).",
			err, w.user, removed)
	case errors.Is(err, transfer.ErrMismatch):
		return fmt.Sprintf("%v: something wrote the store during the import (a server serving it?), or an earlier "+
			"interrupted import was of other data.\n%s.", err, removed)
	case errors.As(err, &qe):
		return fmt.Sprintf("%v.\n%s.", err, removed)
	}
	stopped := "the import stopped"
	if interrupted {
		stopped = "the import was interrupted"
	}
	return fmt.Sprintf("%s at byte %d (%s) of the dump: %v.\nWhat it committed is kept: run the same command again "+
		"to resume it where it stopped, or the same command with --abort to give it up and remove what it wrote.",
		stopped, res.Offset, megabytes(res.Offset), err)
}

// dumpSummary describes a dump that was exported or imported: its users, stores,
// entries and size, and how fast it went.
func dumpSummary(users uint64, sum dump.Sum, bytes int64, elapsed time.Duration) string {
	return fmt.Sprintf("%s, %s, %s, %d bytes (%s) in %.2f s (%s)",
		count(users, "user", "users"), count(sum.Stores, "store", "stores"), count(sum.Entries, "entry", "entries"),
		bytes, megabytes(bytes), elapsed.Seconds(), rate(bytes, elapsed))
}

// count formats n things.
func count[N int64 | uint64](n N, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// megabytes formats a number of bytes in MB (10^6 bytes), as rates are given.
func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// rate formats bytes per elapsed time in MB/s.
func rate(bytes int64, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "- MB/s"
	}
	return fmt.Sprintf("%.1f MB/s", float64(bytes)/1e6/elapsed.Seconds())
}
