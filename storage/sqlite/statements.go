package sqlite

import (
	"context"
	"database/sql"
)

// txStatements is the sqlitedb.DBTX of one write transaction. It prepares each distinct
// statement once per transaction and reuses it for every item, so that a Put of many
// items compiles each of its few statements once rather than once per item. The
// statements are closed with the transaction. Like the transaction, it belongs to one
// goroutine.
type txStatements struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func newTxStatements(tx *sql.Tx) *txStatements {
	return &txStatements{tx: tx, stmts: make(map[string]*sql.Stmt)}
}

// prepared returns the transaction's statement for query, preparing it on first use.
func (t *txStatements) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := t.stmts[query]; ok {
		return s, nil
	}
	s, err := t.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	t.stmts[query] = s
	return s, nil
}

// ExecContext runs query through its prepared statement.
func (t *txStatements) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := t.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// QueryContext runs query through its prepared statement.
func (t *txStatements) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := t.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// QueryRowContext runs query through its prepared statement. If preparing fails, the
// transaction runs the query itself so that the returned Row reports the error.
func (t *txStatements) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := t.prepared(ctx, query)
	if err != nil {
		return t.tx.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// PrepareContext prepares a statement the caller owns, outside the cache.
func (t *txStatements) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, query)
}
