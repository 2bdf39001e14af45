package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"connectrpc.com/connect"

	"github.com/govss/vss/dump"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// This file has what export, import and migrate share: opening a server's dump as a
// stream of bytes, reading a dump through the dump reader, and reporting the result.

// dumpRead is what reading a dump to its end found.
type dumpRead struct {
	header dump.Header
	// stores are each store's id and checksum, in dump order.
	stores []storeSum
	// sum is the trailer's: the numbers of stores and entries and the dump's SHA-256.
	sum dump.Sum
	// bytes is the size of the dump.
	bytes int64
}

// storeSum is one store of a dump and its checksum.
type storeSum struct {
	id  string
	sum dump.Sum
}

// dumpVisitor is called by readDump after each record the dump reader checked, with
// the number of stores and entries read so far.
type dumpVisitor func(k dump.Kind, dr *dump.Reader, seen counts) error

// counts are numbers of stores and entries.
type counts struct{ stores, entries uint64 }

// readDump reads the dump r to its end through the dump reader, which checks every
// record, limit and checksum, and calls visit, if not nil, after the header (with kind
// 0) and after each record. A bad dump is an exitError of exitInvalid; an error of r or
// of visit is returned as it is.
func readDump(r io.Reader, visit dumpVisitor) (dumpRead, error) {
	var got dumpRead
	dr, err := dump.NewReader(r, dump.ReaderOptions{})
	if err != nil {
		return got, badDump(err)
	}
	got.header = dr.Header()
	var seen counts
	if visit != nil {
		if err := visit(0, dr, seen); err != nil {
			return got, err
		}
	}
	for {
		k, err := dr.Next()
		if err != nil {
			return got, badDump(err)
		}
		switch k {
		case dump.KindStore:
			seen.stores++
		case dump.KindEntry:
			seen.entries++
		case dump.KindStoreEnd:
			got.stores = append(got.stores, storeSum{id: dr.Store().ID, sum: dr.Sum()})
		case dump.KindEnd:
			got.sum, got.bytes = dr.Sum(), dr.Offset()
		}
		if visit != nil {
			if err := visit(k, dr, seen); err != nil {
				return got, err
			}
		}
		if k == dump.KindEnd {
			return got, nil
		}
	}
}

// badDump makes a dump reader's *dump.FormatError an exitError of exitInvalid, and
// returns other errors (of the input) as they are.
func badDump(err error) error {
	var fe *dump.FormatError
	if errors.As(err, &fe) {
		return exitError{exitInvalid, fmt.Errorf("the dump is not valid, and nothing of it is kept: %w", err)}
	}
	return err
}

// userDump refuses a dump of a whole database, which names its users: a user imports
// the dump of one user's stores.
func userDump(h dump.Header) error {
	if h.Scope != dump.ScopeUser {
		return exitError{exitInvalid, errors.New("the dump holds the stores of a whole database, each with its user " +
			"(vss-server admin export): an operator imports it with vss-server admin import")}
	}
	return nil
}

// openDump returns the dump of every store of the user on the server e as a stream of
// bytes: its ExportData over Connect, or, for a server that only speaks the VSS HTTP
// API, a dump that vssctl assembles from the stores named with --store-id.
func (c *command) openDump(ctx context.Context, e endpoint) (io.ReadCloser, error) {
	if speaksOnlyVSSHTTP(e.url) {
		src, err := c.kvSource(e)
		if err != nil {
			return nil, err
		}
		return pipeDump(ctx, func(ctx context.Context, w io.Writer) error {
			if err := src.writeDump(ctx, w); err != nil {
				return fmt.Errorf("reading %s: %w", e.url, err)
			}
			return nil
		}), nil
	}
	if c.set["store-id"] {
		return nil, usagef("--store-id names the stores of a server that only speaks the VSS HTTP API (a URL ending in /vss); %s exports every store of the user", e.url)
	}
	return c.exportStream(ctx, e)
}

// exportStream opens ExportData on e and returns the dump it streams.
func (c *command) exportStream(ctx context.Context, e endpoint) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	req := connect.NewRequest(&vssv1.ExportDataRequest{})
	if e.headers != nil {
		h, err := e.headers.Headers(ctx)
		if err != nil {
			cancel()
			return nil, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("authentication headers: %w", err))
		}
		for name, values := range h {
			req.Header()[name] = values
		}
	}
	// The stream has no time limit but the context's: a large export takes long. The
	// plain HTTP client, as the command shows its own progress.
	stream, err := c.connectClient(e, http.DefaultClient).Service().ExportData(ctx, req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("export from %s: %w", e.url, err)
	}
	return &exportReader{url: e.url, stream: stream, cancel: cancel}, nil
}

// exportReader reads the chunks of an ExportData stream one after the other.
type exportReader struct {
	url    string
	stream *connect.ServerStreamForClient[vssv1.ExportDataResponse]
	cancel context.CancelFunc
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
				r.err = fmt.Errorf("export from %s: %w", r.url, err)
			}
			continue
		}
		r.buf = r.stream.Msg().GetChunk()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Close ends the stream.
func (r *exportReader) Close() error {
	r.cancel()
	return r.stream.Close()
}

// pipedDump is the reading end of a dump that a goroutine writes.
type pipedDump struct {
	*io.PipeReader
	done chan struct{}
}

// pipeDump runs write in a goroutine and returns what it writes as a stream: an error
// of write ends the stream with that error.
func pipeDump(ctx context.Context, write func(ctx context.Context, w io.Writer) error) io.ReadCloser {
	pr, pw := io.Pipe()
	p := &pipedDump{PipeReader: pr, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		pw.CloseWithError(write(ctx, pw))
	}()
	return p
}

// Close stops the writer, if it still runs, and waits for it.
func (p *pipedDump) Close() error {
	p.PipeReader.Close()
	<-p.done
	return nil
}

// rate measures the throughput of a transfer.
type rate struct{ start time.Time }

// newRate starts measuring now.
func newRate() rate { return rate{start: time.Now()} }

// mbps returns n bytes over the time since the start in MB/s (10^6 bytes a second).
func (r rate) mbps(n int64) float64 {
	secs := time.Since(r.start).Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(n) / 1e6 / secs
}

// exactSize formats a number of bytes for people, with the exact number when size
// rounds it.
func exactSize(n int64) string {
	if n < 1<<10 {
		return size(n)
	}
	return fmt.Sprintf("%s (%d bytes)", size(n), n)
}

// sha returns a checksum in hex.
func sha(sum [32]byte) string { return hex.EncodeToString(sum[:]) }

// compareStores compares the stores of a source's dump with those of the target's
// export, by checksum, and returns what differs; other stores of the target are counted
// in extra.
func compareStores(source, target []storeSum) (mismatches []string, extra int) {
	byID := make(map[string]dump.Sum, len(target))
	for _, s := range target {
		byID[s.id] = s.sum
	}
	for _, s := range source {
		got, ok := byID[s.id]
		switch {
		case !ok:
			mismatches = append(mismatches, fmt.Sprintf("store %q is missing", s.id))
		case got != s.sum:
			mismatches = append(mismatches, fmt.Sprintf("store %q holds %d entries with SHA-256 %s, the source %d with %s",
				s.id, got.Entries, sha(got.SHA256), s.sum.Entries, sha(s.sum.SHA256)))
		}
		delete(byID, s.id)
	}
	return mismatches, len(byID)
}

// namedStores returns the stores named with --store-id, sorted as a dump orders them,
// each once.
func (c *command) namedStores() []string {
	ids := slices.Clone(c.storeIDs)
	slices.Sort(ids)
	return slices.Compact(ids)
}
