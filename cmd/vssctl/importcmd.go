package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/dump"
)

// importDump imports the dump file c.args[0] into the user's stores on --server.
func (c *command) importDump(ctx context.Context, e endpoint) error {
	if c.set["store-id"] {
		return usagef("import writes the stores the dump holds, under their own ids: it does not take --store-id")
	}
	in, total, err := c.openInput(c.args[0])
	if err != nil {
		return err
	}
	defer in.Close()
	if speaksOnlyVSSHTTP(e.url) {
		return c.importToKV(ctx, e, in, total)
	}
	return c.importToConnect(ctx, e, in, total)
}

// importToConnect imports the dump in, of total bytes if known, through ImportData. A
// file is read again at the offsets sent instead of held.
func (c *command) importToConnect(ctx context.Context, e endpoint, in io.Reader, total int64) error {
	cl := c.connectClient(e, http.DefaultClient)
	var src io.Reader = in
	if f, ok := in.(*os.File); ok && total >= 0 {
		src = io.NewSectionReader(f, 0, total)
	}
	head, rest, err := readHead(src)
	if err != nil {
		return err
	}
	if ra, ok := src.(*io.SectionReader); ok {
		rest = io.NewSectionReader(ra, 0, total)
	}
	if c.abort {
		return c.abortImport(ctx, cl, e.url, head.id)
	}
	if err := userDump(head.header); err != nil {
		return err
	}
	got, err := c.sendDump(ctx, cl, e.url, rest, head.id, true)
	if err != nil {
		return err
	}
	c.progress.done()
	if c.json {
		return c.printValue(map[string]any{"importId": head.id, "stores": got.sum.Stores, "entries": got.sum.Entries,
			"bytes": got.bytes, "sha256": sha(got.sum.SHA256)})
	}
	fmt.Fprintf(c.stderr, "imported %d stores, %d entries (%s) as import %s; the server verified every store by checksum\nSHA-256 %s (the dump's)\n",
		got.sum.Stores, got.sum.Entries, size(got.bytes), head.id, sha(got.sum.SHA256))
	return nil
}

// importToKV imports the dump in into a server that only speaks the VSS HTTP API. A
// file (total known) is checked whole first, since what is written there cannot be
// taken back cleanly.
func (c *command) importToKV(ctx context.Context, e endpoint, in io.Reader, total int64) error {
	if err := c.checkKVTarget(e.url); err != nil {
		return err
	}
	if f, ok := in.(io.ReadSeeker); ok && total >= 0 {
		if err := c.checkFile(f); err != nil {
			return err
		}
	}
	got, t, err := c.importKV(ctx, e, in)
	if err != nil {
		return err
	}
	return c.kvSummary(got, t, "imported")
}

// openInput opens the dump file path, or standard input for "-", and returns its size
// when known (-1 otherwise).
func (c *command) openInput(path string) (io.ReadCloser, int64, error) {
	if path == "-" {
		return io.NopCloser(c.stdin), -1, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, localError{fmt.Errorf("import: %w", err)}
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		return f, fi.Size(), nil
	}
	return f, -1, nil
}

// fileImportID names the import of a dump file after its beginning, the magic number
// and the header, which hold the time the dump was made: importing the same file again
// resumes the same import.
func fileImportID(head []byte) string {
	sum := sha256.Sum256(head)
	return "file-" + hex.EncodeToString(sum[:24])
}

// dumpHead is the beginning of a dump file: its header and the import id it names.
type dumpHead struct {
	header dump.Header
	id     string
}

// readHead reads the magic number and the header of the dump in, and returns them with
// the dump whole again: what was read of in, then the rest of in.
func readHead(in io.Reader) (dumpHead, io.Reader, error) {
	var read bytes.Buffer
	dr, err := dump.NewReader(io.TeeReader(in, &read), dump.ReaderOptions{})
	if err != nil {
		return dumpHead{}, nil, badDump(err)
	}
	head := dumpHead{header: dr.Header(), id: fileImportID(read.Bytes()[:dr.Offset()])}
	return head, io.MultiReader(&read, in), nil
}

// sendDump sends the dump src to the client's ImportData under the import id, reading
// it through the dump reader as it goes, and shows the progress; the client checks that
// the server's SHA-256 is the dump's. With resume (a file, whose bytes an earlier run
// sent too) it first asks the server how far an earlier run got, and sends only the
// rest.
func (c *command) sendDump(ctx context.Context, cl *vssclient.Client, to string, src io.Reader, id string, resume bool) (dumpRead, error) {
	r := newRate()
	res, err := cl.ImportData(ctx, sourceReader{src}, id, vssclient.ImportOptions{
		ChunkSize: int64(c.chunkSize),
		Resume:    resume,
		Progress: func(p vssclient.Progress) {
			of := ""
			if p.Total > 0 {
				of = fmt.Sprintf(" of %s (%d%%)", size(p.Total), p.Bytes*100/p.Total)
			}
			c.progress.show("imported %s%s, %.1f MB/s, %d stores, %d entries", size(p.Bytes), of, r.mbps(p.Bytes), p.Stores, p.Entries)
		},
	})
	got := fromSummary(res.DumpSummary)
	if err != nil {
		return got, importError(to, err)
	}
	return got, nil
}

// abortImport gives up the import id on the server to.
func (c *command) abortImport(ctx context.Context, cl *vssclient.Client, to, id string) error {
	if err := cl.AbortImport(ctx, id); err != nil {
		return importError(to, err)
	}
	if c.json {
		return c.printValue(map[string]any{"importId": id, "aborted": true})
	}
	fmt.Fprintf(c.stderr, "gave up import %s: the server removed what it wrote\n", id)
	return nil
}

// checkKVTarget refuses to import into a server that only speaks the VSS HTTP API
// unless --allow-new-versions accepts that the versions change.
func (c *command) checkKVTarget(url string) error {
	if c.abort {
		return usagef("%s only speaks the VSS HTTP API and keeps no record of an import to give up: what an import wrote there are ordinary keys", url)
	}
	if !c.allowNewVersions {
		return usagef("%s only speaks the VSS HTTP API (its URL ends in /vss), where a write cannot choose a version: "+
			"every key would be created anew at version 1, whatever its version in the dump, and a wallet that cached a version "+
			"would be refused at its next write. Give --allow-new-versions to import with new versions (the wallets must then read "+
			"their keys again), or import into a server with the Connect API, which keeps them", url)
	}
	return nil
}

// importKV imports the dump src into a server that only speaks the VSS HTTP API. Its
// keys are written as they are read, before the checksum of their store is checked: a
// dump found bad is undone (kvTarget.undo).
func (c *command) importKV(ctx context.Context, e endpoint, src io.Reader) (dumpRead, *kvTarget, error) {
	t := &kvTarget{api: c.newVSSHTTP(e), verify: !c.noVerify, warn: c.warnf}
	in := &countingWriter{w: io.Discard}
	r := newRate()
	got, err := readDump(io.TeeReader(src, in), func(k dump.Kind, dr *dump.Reader, seen counts) error {
		if err := t.visit(ctx, k, dr); err != nil {
			return err
		}
		c.progress.show("imported %s, %.1f MB/s, %d stores, %d entries (%d written)", size(in.n), r.mbps(in.n), seen.stores, seen.entries, t.written)
		return nil
	})
	var fe *dump.FormatError
	if errors.As(err, &fe) && t.written > 0 {
		if uerr := t.undo(context.WithoutCancel(ctx)); uerr != nil {
			return got, t, fmt.Errorf("%w; %v", err, uerr)
		}
		c.warnf("removed the %d keys this run created before the dump was found bad", t.written)
	}
	return got, t, err
}

// checkFile reads the dump file f to its end through the dump reader, then rewinds it,
// so that a bad file is refused before anything of it is written to a server that
// cannot take it back.
func (c *command) checkFile(f io.ReadSeeker) error {
	var in countingWriter
	in.w = io.Discard
	if _, err := readDump(io.TeeReader(f, &in), func(_ dump.Kind, _ *dump.Reader, seen counts) error {
		c.progress.show("checking the dump: %s, %d stores, %d entries", size(in.n), seen.stores, seen.entries)
		return nil
	}); err != nil {
		return err
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// kvSummary prints what an import into a server that only speaks the VSS HTTP API did:
// verb ("imported", "moved") and, for a migrate, where from and to, and each store.
func (c *command) kvSummary(got dumpRead, t *kvTarget, verb string) error {
	c.progress.done()
	if c.json {
		return c.printValue(map[string]any{"stores": got.sum.Stores, "entries": got.sum.Entries, "written": t.written,
			"skipped": t.skipped, "bytes": got.bytes, "sha256": sha(got.sum.SHA256), "newVersions": true,
			"verified": t.verify, "globalVersionsNotSet": t.unsetGlobals})
	}
	fmt.Fprintf(c.stderr, "%s %d stores, %d entries (%s): %d keys written, %d already there from an earlier run\n",
		verb, got.sum.Stores, got.sum.Entries, size(got.bytes), t.written, t.skipped)
	if c.name == "migrate" {
		fmt.Fprintf(c.stderr, "from %s to %s:\n", c.from, c.to)
		c.printMoved(got)
	}
	fmt.Fprintf(c.stderr, "SHA-256 %s (the dump's)\n", sha(got.sum.SHA256))
	if t.verify {
		fmt.Fprintln(c.stderr, "each store was read back: its keys, values and order match the dump, and so does its global version where it was set")
	}
	fmt.Fprintln(c.stderr, "warning: the target only speaks the VSS HTTP API, so every key has a new version there (1): "+
		"clients that cached versions must read their keys again before they write; an export of the target has another SHA-256")
	if !got.header.Snapshot {
		fmt.Fprintln(c.stderr, "warning: the source was read key by key, not in one snapshot: a write meanwhile may be only partly moved")
	}
	return nil
}
