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

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/dump"
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

// readDump reads the dump r to its end through the dump reader
// (vssclient.VerifyDump), which checks every record, limit and checksum, and calls
// visit, if not nil, after the header (with kind 0) and after each record. A bad dump is
// an exitError of exitInvalid; an error of r or of visit is returned as it is.
func readDump(r io.Reader, visit dumpVisitor) (dumpRead, error) {
	var seen counts
	got, err := vssclient.VerifyDump(r, func(k dump.Kind, dr *dump.Reader) error {
		switch k {
		case dump.KindStore:
			seen.stores++
		case dump.KindEntry:
			seen.entries++
		}
		if visit != nil {
			return visit(k, dr, seen)
		}
		return nil
	})
	return fromSummary(got), badDump(err)
}

// fromSummary is the dumpRead of what the client read.
func fromSummary(s vssclient.DumpSummary) dumpRead {
	got := dumpRead{header: s.Header, sum: s.Sum, bytes: s.Bytes}
	for _, st := range s.StoreSums {
		got.stores = append(got.stores, storeSum{id: st.ID, sum: st.Sum})
	}
	return got
}

// badDump makes a dump reader's *dump.FormatError an exitError of exitInvalid, and
// returns other errors (of the input) as they are.
func badDump(err error) error {
	if err == nil {
		return nil
	}
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
	if err := c.exportsAll(e); err != nil {
		return nil, err
	}
	cl := c.connectClient(e, http.DefaultClient)
	return pipeDump(ctx, func(ctx context.Context, w io.Writer) error {
		_, err := cl.ExportData(ctx, w)
		return exportError(e, err)
	}), nil
}

// exportsAll refuses --store-id for a Connect server, whose export holds every store of
// the user.
func (c *command) exportsAll(e endpoint) error {
	if c.set["store-id"] {
		return usagef("--store-id names the stores of a server that only speaks the VSS HTTP API (a URL ending in /vss); %s exports every store of the user", e.url)
	}
	return nil
}

// exportError names the server of a failed ExportData; a bad dump is an exitError of
// exitInvalid.
func exportError(e endpoint, err error) error {
	var fe *dump.FormatError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return badDump(err)
	}
	return fmt.Errorf("export from %s: %w", e.url, err)
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
