package sqlite

import (
	"context"
	"errors"
	"time"

	sqlitedb "github.com/govss/vss/db/sqlite"
	"github.com/govss/vss/storage"
)

// challengeCleanupLimit is how many expired challenges one UseChallenge deletes at
// most. Every recorded challenge is paid for by up to this many deletions, so expired
// rows cannot pile up, and no call does much more work than its own insert.
const challengeCleanupLimit = 100

var _ storage.AuthStore = (*Store)(nil)

// UseChallenge records that the challenge k1 was answered, or returns
// storage.ErrConflict if it was answered before. In the same transaction it deletes up
// to challengeCleanupLimit other challenges whose expiresAt has passed.
func (s *Store) UseChallenge(ctx context.Context, k1 []byte, expiresAt time.Time) error {
	if len(k1) == 0 {
		return errors.New("sqlite: empty challenge")
	}
	return interpretError(s.useChallenge(ctx, k1, expiresAt))
}

// useChallenge is UseChallenge before its error is interpreted.
func (s *Store) useChallenge(ctx context.Context, k1 []byte, expiresAt time.Time) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op once committed
	q := sqlitedb.New(tx)
	n, err := q.InsertChallenge(ctx, sqlitedb.InsertChallengeParams{K1: k1, ExpiresAt: expiresAt.UnixMilli()})
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrConflict
	}
	// Both sides are truncated to milliseconds and compared strictly, so a row goes
	// only once its expiry has passed.
	if _, err := q.DeleteExpiredChallenges(ctx, sqlitedb.DeleteExpiredChallengesParams{
		Now:          time.Now().UnixMilli(),
		Kept:         k1,
		CleanupLimit: challengeCleanupLimit,
	}); err != nil {
		return err
	}
	return tx.Commit()
}

// Secret returns the secret stored under name, storing generate()'s result first if
// there is none. It calls generate every time, then runs one upsert that keeps the
// first stored secret, so every Store racing on a new file gets the same bytes.
func (s *Store) Secret(ctx context.Context, name string, generate func() ([]byte, error)) ([]byte, error) {
	fresh, err := generate()
	if err != nil {
		return nil, err
	}
	if len(fresh) == 0 {
		return nil, errors.New("sqlite: generated secret is empty")
	}
	stored, err := sqlitedb.New(s.write).Secret(ctx, sqlitedb.SecretParams{Name: name, Secret: fresh})
	if err != nil {
		return nil, interpretError(err)
	}
	return stored, nil
}
