package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/govss/vss/storage"
)

// interpretError maps an error of pgx or PostgreSQL to the storage package's errors. It is
// the only place that does so:
//
//   - nil stays nil, and a cancelled or expired context is returned unchanged, so that
//     errors.Is(err, context.Canceled) holds for the caller.
//   - pgx.ErrNoRows becomes storage.ErrNotFound.
//   - unique_violation (23505) becomes storage.ErrConflict: a version-0 create met a row
//     created concurrently. So do serialization_failure (40001) and deadlock_detected
//     (40P01): PostgreSQL rolled the statement back because a concurrent request wrote
//     the same keys, so nothing was written and the client must re-read.
//   - a failed connection or pool acquisition, a closed connection or pool, a network
//     error, a server that is shutting down or starting (57P01, 57P02, 57P03), a
//     connection exception (class 08) and too_many_connections (53300) wrap
//     storage.ErrUnavailable together with the cause, which the server logs.
//   - anything else is an internal failure, returned wrapped for the log. Its text may
//     contain SQL details, so the service must not send it to clients (it does not: it
//     sends a generic message for errors that are none of the sentinels).
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}

	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505", pgErr.Code == "40001", pgErr.Code == "40P01":
			return storage.ErrConflict
		case strings.HasPrefix(pgErr.Code, "08"),
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03",
			pgErr.Code == "53300":
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		return fmt.Errorf("database: %w", err)
	}

	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr),
		errors.As(err, &netErr),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, puddle.ErrClosedPool),
		pgconn.Timeout(err):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return fmt.Errorf("database: %w", err)
}
