package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

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
//     created concurrently. So does VS409, which PutObjects raises through vss_abort when
//     a version condition fails after it inserted rows. Nothing else is a conflict: a
//     conflict tells the client that a version condition failed, and clients do not
//     retry it.
//   - VS412, which BeginRequest raises when a fenced write's lease is not held, becomes
//     storage.ErrLeaseNotHeld.
//   - serialization_failure (40001), deadlock_detected (40P01) and VS428 (BeginBatch
//     found the store's hints of followed stores wrong, and corrected them) wrap
//     storage.ErrUnavailable: PostgreSQL rolled the statement back because of a
//     concurrent request, nothing was written, and the request may simply be run again.
//     The store does so a few times itself (see retry) before returning the error.
//   - a failed connection or pool acquisition, a closed connection or pool, a network
//     error, a server that is shutting down or starting (57P01, 57P02, 57P03), a
//     connection exception (class 08), too_many_connections (53300) and
//     read_only_sql_transaction (25006: the server connected to is a standby now, as
//     after a switchover behind a proxy) wrap storage.ErrUnavailable together with the
//     cause, which the server logs. These are the connection errors (see
//     connectionError). A write that meets one may have committed or not: the client
//     learns UNAVAILABLE, which it retries, and never success.
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
		case pgErr.Code == "23505", pgErr.Code == conflictCode:
			return storage.ErrConflict
		case pgErr.Code == leaseNotHeldCode:
			return storage.ErrLeaseNotHeld
		case retryable(err),
			strings.HasPrefix(pgErr.Code, "08"),
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03",
			pgErr.Code == "53300", pgErr.Code == "25006":
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

// connectionError reports whether err is a failure to reach the database or to keep
// talking to it (the second group of storage.ErrUnavailable causes in interpretError),
// rather than a statement rolled back for a concurrent one or a context that ended.
func connectionError(err error) bool {
	return !retryable(err) && errors.Is(interpretError(err), storage.ErrUnavailable)
}

// conflictCode is the SQLSTATE PutObjects raises (through vss_abort) for a failed version
// condition once it has inserted rows, which the error undoes.
const conflictCode = "VS409"

// leaseNotHeldCode is the SQLSTATE BeginRequest raises when the lease that fences a
// write is not held with the write's token.
const leaseNotHeldCode = "VS412"

// retryable reports whether err is PostgreSQL rolling a statement back because of a
// concurrent transaction, serialization_failure (40001) or deadlock_detected (40P01), or
// because a store's feed state differed from the store's hint (VS428, see BeginBatch):
// nothing was written and the same statement may succeed when run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01" || pgErr.Code == hintsWrongCode)
}

// Retries of a statement that failed retryably: at most retryAttempts runs in all,
// waiting a random time of up to retryBackoff·2ⁿ before the n-th retry, so that the
// requests that collided do not collide again in step.
const (
	retryAttempts = 5
	retryBackoff  = 2 * time.Millisecond
)

// retry runs op until it succeeds, fails with an error that is not retryable, has run
// retryAttempts times or ctx ends, and returns its last error interpreted. op must
// be a whole transaction (one statement, or one batch run as an implicit transaction),
// so that running it again after a rollback is running the request again.
func retry(ctx context.Context, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || !retryable(err) || attempt == retryAttempts {
			return interpretError(err)
		}
		if !backoff(ctx, attempt) {
			return interpretError(err)
		}
	}
}

// backoff waits before the retry that follows the attempt-th run, a random time of up to
// retryBackoff·2^(attempt-1). It returns false, at once, if ctx ends first.
func backoff(ctx context.Context, attempt int) bool {
	t := time.NewTimer(rand.N(retryBackoff << (attempt - 1)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
