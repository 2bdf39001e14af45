package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/dump"
)

// exportDump writes the user's dump from --server to --out, or to standard output.
func (c *command) exportDump(ctx context.Context, e endpoint) error {
	toStdout := c.out == "" || c.out == "-"
	switch {
	case toStdout && c.json:
		return usagef("export --json prints the summary on standard output, where the dump goes without --out: give --out FILE")
	case toStdout && isTerminal(c.stdout):
		return usagef("export writes a binary dump, not for a terminal: give --out FILE, or redirect standard output")
	}
	// The source is opened, or refused, before the output file is created.
	var write func(w io.Writer) (dumpRead, error)
	if speaksOnlyVSSHTTP(e.url) {
		src, err := c.openDump(ctx, e)
		if err != nil {
			return err
		}
		defer src.Close()
		write = func(w io.Writer) (dumpRead, error) { return c.copyDump(w, src) }
	} else {
		if err := c.exportsAll(e); err != nil {
			return err
		}
		write = func(w io.Writer) (dumpRead, error) { return c.exportConnect(ctx, e, w) }
	}
	if toStdout {
		got, err := write(c.stdout)
		if err != nil {
			return err
		}
		return c.exportSummary(got, "standard output")
	}
	got, err := c.exportFile(write, c.out)
	if err != nil {
		return err
	}
	return c.exportSummary(got, c.out)
}

// exportConnect writes the user's dump from e's ExportData to w, checked as it goes by
// the client, and shows the progress.
func (c *command) exportConnect(ctx context.Context, e endpoint, w io.Writer) (dumpRead, error) {
	out := &countingWriter{w: w}
	r := newRate()
	got, err := c.connectClient(e, http.DefaultClient).ExportData(ctx, out, vssclient.WithExportProgress(func(p vssclient.Progress) {
		c.progress.show("exported %s (%.1f MB/s), %d stores, %d entries", size(p.Bytes), r.mbps(p.Bytes), p.Stores, p.Entries)
	}))
	if out.err != nil {
		return fromSummary(got.DumpSummary), localError{fmt.Errorf("export: writing the dump: %w", out.err)}
	}
	return fromSummary(got.DumpSummary), exportError(e, err)
}

// exportFile writes the dump that write writes to path: to path.partial first, renamed
// to path once the dump has been read to its end and verified, so that an interrupted
// export never leaves a file that looks complete.
func (c *command) exportFile(write func(w io.Writer) (dumpRead, error), path string) (dumpRead, error) {
	partial := path + ".partial"
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return dumpRead{}, localError{fmt.Errorf("export: %w", err)}
	}
	got, err := write(f)
	if err != nil {
		return got, removePartial(f, err)
	}
	if err := f.Sync(); err != nil {
		return got, removePartial(f, localError{fmt.Errorf("export: %w", err)})
	}
	if err := f.Close(); err != nil {
		os.Remove(partial)
		return got, localError{fmt.Errorf("export: %w", err)}
	}
	if err := os.Rename(partial, path); err != nil {
		os.Remove(partial)
		return got, localError{fmt.Errorf("export: %w", err)}
	}
	syncDir(filepath.Dir(path))
	return got, nil
}

// removePartial removes an unfinished output file, keeping the first error.
func removePartial(f *os.File, err error) error {
	f.Close()
	os.Remove(f.Name())
	return err
}

// syncDir makes a rename in dir durable, where the system allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// copyDump copies the dump src to w, reading it through the dump reader as it goes,
// and shows the progress.
func (c *command) copyDump(w io.Writer, src io.Reader) (dumpRead, error) {
	out := &countingWriter{w: w}
	r := newRate()
	got, err := readDump(io.TeeReader(src, out), func(_ dump.Kind, _ *dump.Reader, seen counts) error {
		c.progress.show("exported %s (%.1f MB/s), %d stores, %d entries", size(out.n), r.mbps(out.n), seen.stores, seen.entries)
		return nil
	})
	if out.err != nil {
		// The TeeReader reports a failed write as a failure of the source.
		return got, localError{fmt.Errorf("export: writing the dump: %w", out.err)}
	}
	return got, err
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

// exportSummary prints what an export wrote.
func (c *command) exportSummary(got dumpRead, dest string) error {
	c.progress.done()
	if c.json {
		return c.printValue(map[string]any{"file": dest, "stores": got.sum.Stores, "entries": got.sum.Entries,
			"bytes": got.bytes, "sha256": sha(got.sum.SHA256)})
	}
	fmt.Fprintf(c.stderr, "exported %d stores, %d entries, %s to %s\nSHA-256 %s\n",
		got.sum.Stores, got.sum.Entries, exactSize(got.bytes), dest, sha(got.sum.SHA256))
	if !got.header.Snapshot {
		fmt.Fprintln(c.stderr, "warning: the source was read key by key, not in one snapshot: a write meanwhile may be only partly in the dump")
	}
	return nil
}
