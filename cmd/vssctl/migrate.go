package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"

	vssclient "github.com/govss/vss/client"
)

// checkMigrateURLs checks migrate's --from and --to.
func (c *command) checkMigrateURLs() error {
	switch {
	case c.from == "" || c.to == "":
		return usagef("migrate needs --from URL, the server to move the data from, and --to URL, the server to move it to")
	case !isHTTPURL(c.from):
		return usagef("--from %q is not an http or https URL", c.from)
	case !isHTTPURL(c.to):
		return usagef("--to %q is not an http or https URL", c.to)
	case strings.TrimSuffix(c.from, "/") == strings.TrimSuffix(c.to, "/"):
		return usagef("--from and --to are the same server: a store cannot be moved onto itself")
	}
	return nil
}

// migrate streams the user's dump from --from into an import on --to, then checks the
// result by checksum.
func (c *command) migrate(ctx context.Context) error {
	src, err := c.endpoint(c.from, c.auth, nil)
	if err != nil {
		return err
	}
	// Without credentials of its own, the target is signed with the source's key.
	dst, err := c.endpoint(c.to, c.toAuth, src.key)
	if err != nil {
		return err
	}
	if speaksOnlyVSSHTTP(c.to) {
		return c.migrateToKV(ctx, src, dst)
	}
	return c.migrateToConnect(ctx, src, dst)
}

// migrateToConnect migrates into a server's ImportData, and exports the target again
// to compare.
func (c *command) migrateToConnect(ctx context.Context, src, dst endpoint) error {
	cl := c.connectClient(dst, http.DefaultClient)
	id, err := c.migrateID(ctx, src, dst)
	if err != nil {
		return err
	}
	if c.abort {
		return c.abortImport(ctx, cl, dst.url, id)
	}
	in, err := c.openDump(ctx, src)
	if err != nil {
		return err
	}
	// A new export of the source has other bytes than an earlier run's (its header's
	// time): it is sent whole, and the server skips what it committed.
	got, err := c.sendDump(ctx, cl, dst.url, in, id, false)
	in.Close()
	if err != nil {
		return err
	}
	extra, err := c.verifyTarget(ctx, dst, got)
	if err != nil {
		return err
	}
	return c.migrateSummary(got, id, extra)
}

// migrateToKV migrates into a server that only speaks the VSS HTTP API.
func (c *command) migrateToKV(ctx context.Context, src, dst endpoint) error {
	if err := c.checkKVTarget(dst.url); err != nil {
		return err
	}
	in, err := c.openDump(ctx, src)
	if err != nil {
		return err
	}
	defer in.Close()
	got, t, err := c.importKV(ctx, dst, in)
	if err != nil {
		return err
	}
	return c.kvSummary(got, t, "moved")
}

// migrateID names the import of a migrate after the two servers and the users it acts
// as on each (and, for a source that cannot list its stores, the stores named), so that
// the same command run again resumes the same import.
func (c *command) migrateID(ctx context.Context, src, dst endpoint) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "vssctl migrate\n%s\n%s\n", strings.TrimSuffix(src.url, "/"), strings.TrimSuffix(dst.url, "/"))
	for _, e := range []endpoint{src, dst} {
		user, err := e.id.user(ctx)
		if err != nil {
			return "", fmt.Errorf("the user of %s: %w", e.url, err)
		}
		fmt.Fprintf(h, "%s %s\n", e.id.scheme, user)
	}
	if speaksOnlyVSSHTTP(src.url) {
		for _, id := range c.namedStores() {
			fmt.Fprintf(h, "store %q\n", id)
		}
	}
	return "migrate-" + hex.EncodeToString(h.Sum(nil)[:24]), nil
}

// verifyTarget exports the target and compares each store of the source's dump with
// the target's, by checksum, unless --no-verify. It returns the number of other stores
// the target holds.
func (c *command) verifyTarget(ctx context.Context, dst endpoint, source dumpRead) (int, error) {
	if c.noVerify {
		return 0, nil
	}
	res, err := c.connectClient(dst, http.DefaultClient).ExportData(ctx, io.Discard, vssclient.WithExportProgress(func(p vssclient.Progress) {
		c.progress.show("verifying: exported %d stores, %d entries of the target", p.Stores, p.Entries)
	}))
	if err != nil {
		return 0, fmt.Errorf("verifying: exporting the target: %w", exportError(dst, err))
	}
	got := fromSummary(res.DumpSummary)
	mismatches, extra := compareStores(source.stores, got.stores)
	if len(mismatches) > 0 {
		return 0, exitError{exitVerification, fmt.Errorf("the target's export does not match the source's: %s; was either written to during the move?",
			strings.Join(mismatches, "; "))}
	}
	return extra, nil
}

// printMoved prints the stores a migrate moved.
func (c *command) printMoved(got dumpRead) {
	if c.json {
		return
	}
	c.progress.done()
	for _, s := range got.stores {
		fmt.Fprintf(c.stderr, "  store %q: %d entries, SHA-256 %s\n", s.id, s.sum.Entries, sha(s.sum.SHA256))
	}
}

// migrateSummary prints what a migrate into a Connect server moved and how it was
// checked.
func (c *command) migrateSummary(got dumpRead, importID string, extra int) error {
	c.progress.done()
	if c.json {
		return c.printValue(map[string]any{"importId": importID, "stores": got.sum.Stores, "entries": got.sum.Entries,
			"bytes": got.bytes, "sha256": sha(got.sum.SHA256), "verified": !c.noVerify, "otherTargetStores": extra})
	}
	fmt.Fprintf(c.stderr, "moved %d stores, %d entries (%s) from %s to %s:\n", got.sum.Stores, got.sum.Entries, size(got.bytes), c.from, c.to)
	c.printMoved(got)
	fmt.Fprintf(c.stderr, "SHA-256 %s: the source's dump, and the target's import of it\n", sha(got.sum.SHA256))
	if c.noVerify {
		fmt.Fprintln(c.stderr, "(--no-verify: the target was not exported again)")
	} else {
		fmt.Fprintln(c.stderr, "the target, exported again, holds every store with the same checksum")
	}
	if extra > 0 {
		fmt.Fprintf(c.stderr, "the target also holds %d other stores of the user, which were there before\n", extra)
	}
	if !got.header.Snapshot {
		fmt.Fprintln(c.stderr, "warning: the source was read key by key, not in one snapshot: a write meanwhile may be only partly moved")
	}
	return nil
}
