package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	pgdb "github.com/govss/vss/db/postgres"
	"github.com/govss/vss/storage"
)

// challengeCleanupLimit is how many expired challenges one UseChallenge deletes at
// most. Every recorded challenge is paid for by up to this many deletions, so expired
// rows cannot pile up, and no call does much more work than its own insert.
const challengeCleanupLimit = 100

var _ storage.AuthStore = (*Store)(nil)

// UseChallenge records that the challenge k1 was answered, or returns
// storage.ErrConflict if it was answered before, on this or any other server sharing the
// database. In the same statement it deletes up to challengeCleanupLimit other
// challenges whose expiresAt has passed by the database's clock.
func (s *Store) UseChallenge(ctx context.Context, k1 []byte, expiresAt time.Time) error {
	if len(k1) == 0 {
		return errors.New("postgres: empty challenge")
	}
	row, err := s.q.UseChallenge(ctx, pgdb.UseChallengeParams{
		K1:           k1,
		CleanupLimit: challengeCleanupLimit,
		ExpiresAt:    pgtype.Timestamptz{Time: expiresAt, Valid: true},
	})
	if err != nil {
		return interpretError(err)
	}
	if row.Used == 0 {
		return storage.ErrConflict
	}
	return nil
}

// Secret returns the secret stored under name, storing generate()'s result first if
// there is none. It calls generate every time, then makes one round trip whose upsert
// keeps the first stored secret, so every server racing on a new database gets the same
// bytes.
func (s *Store) Secret(ctx context.Context, name string, generate func() ([]byte, error)) ([]byte, error) {
	fresh, err := generate()
	if err != nil {
		return nil, err
	}
	if len(fresh) == 0 {
		return nil, errors.New("postgres: generated secret is empty")
	}
	stored, err := s.q.Secret(ctx, pgdb.SecretParams{Name: name, Secret: fresh})
	if err != nil {
		return nil, interpretError(err)
	}
	return stored, nil
}
