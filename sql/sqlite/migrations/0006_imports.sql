-- 0006 adds what an import of a dump (storage.Importer, docs/dump-format.md) records;
-- see the PostgreSQL migration of the same number.
CREATE TABLE IF NOT EXISTS vss_imports (
    user_token TEXT    NOT NULL,
    store_id   TEXT    NOT NULL,
    import_id  TEXT    NOT NULL,
    entries    INTEGER NOT NULL,
    done       INTEGER NOT NULL,
    sha256     BLOB,
    PRIMARY KEY (user_token, store_id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS vss_imports_import_id_idx ON vss_imports (import_id);

CREATE TABLE IF NOT EXISTS vss_import_sessions (
    user_token  TEXT    NOT NULL,
    import_id   TEXT    NOT NULL,
    next_offset INTEGER NOT NULL,
    checkpoint  BLOB,
    done        INTEGER NOT NULL DEFAULT 0,
    stores      INTEGER NOT NULL DEFAULT 0,
    entries     INTEGER NOT NULL DEFAULT 0,
    sha256      BLOB,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (user_token, import_id)
) WITHOUT ROWID;
