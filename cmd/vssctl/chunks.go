package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	vssclient "github.com/govss/vss/client"
)

// defaultChunkSize is the size of an ImportData chunk without --chunk-size.
const defaultChunkSize = vssclient.DefaultImportChunkSize

// Bounds of --chunk-size: a chunk is one request body, and the server's default limit
// of a body is 64 MiB; the server wants the dump's header whole in the first chunk, and
// asks for at least 4 KiB.
const (
	minChunkSize = vssclient.MinImportChunkSize
	maxChunkSize = 64 << 20
)

// byteSize is a flag that holds a number of bytes: a plain number, or one with the
// suffix KiB or MiB.
type byteSize int64

// String returns the size in bytes.
func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

// Set parses a size such as 1048576, 512KiB or 4MiB.
func (b *byteSize) Set(s string) error {
	unit := int64(1)
	switch {
	case strings.HasSuffix(s, "MiB"):
		unit, s = 1<<20, strings.TrimSuffix(s, "MiB")
	case strings.HasSuffix(s, "KiB"):
		unit, s = 1<<10, strings.TrimSuffix(s, "KiB")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > maxChunkSize/unit || n*unit < minChunkSize {
		return fmt.Errorf("want a size from 4KiB to 64MiB, such as 1048576, 512KiB or 4MiB")
	}
	*b = byteSize(n * unit)
	return nil
}

// sourceError is a failure to read the dump being imported (a file, standard input,
// the source of a migrate), which importError returns as it is.
type sourceError struct{ err error }

func (e sourceError) Error() string { return e.err.Error() }
func (e sourceError) Unwrap() error { return e.err }

// sourceReader marks the errors of the dump it reads as sourceErrors.
type sourceReader struct{ r io.Reader }

// Read reads from r, marking its errors but io.EOF.
func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = sourceError{err}
	}
	return n, err
}

// importError maps a failure of the client's ImportData: a bad dump is an exitError of
// exitInvalid, a SHA-256 that is not the dump's one of exitVerification, and a refusal
// of the server gets the server's URL and what the user can do about it. The server
// refuses a store that is not empty, and gives up an import whose stores do not match
// the dump (the source changed since an interrupted run), with FAILED_PRECONDITION; a
// bad dump with INVALID_ARGUMENT. It keeps nothing of an import it refuses or gives up.
// A failure to read the dump is returned as it is.
func importError(to string, err error) error {
	var se sourceError
	var ce *connect.Error
	switch {
	case errors.As(err, &se):
		return badDump(se.err)
	case errors.Is(err, vssclient.ErrImportChecksum):
		return exitError{exitVerification, err}
	case !errors.As(err, &ce):
		return badDump(err)
	}
	err = fmt.Errorf("import into %s: %w", to, err)
	switch connect.CodeOf(err) {
	case connect.CodeFailedPrecondition:
		hint := "run the command again to start the import afresh"
		if strings.Contains(err.Error(), "not empty") {
			hint = "every store of the dump must be empty on the target: delete the store there first if it holds " +
				"nothing you need (vssctl delete-store STORE_ID; vssctl export keeps a copy), or import elsewhere"
		}
		return exitError{exitPrecondition, fmt.Errorf("%w\n%s", err, hint)}
	case connect.CodeInvalidArgument:
		return exitError{exitInvalid, fmt.Errorf("the server refused the import: %w", err)}
	case connect.CodeUnimplemented:
		return fmt.Errorf("%w (this server cannot import dumps: give the /vss URL of its VSS HTTP API to import key by key, with new versions)", err)
	}
	return err
}
