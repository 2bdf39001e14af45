-- 0001 creates the key-value table of the embedded store. It mirrors the reference VSS
-- PostgreSQL layout (table vss_db, the global version as the row whose key is
-- 'global_version') so that both stores share one semantics.
--
-- sort_order is the rowid and AUTOINCREMENT, so it only ever grows and is never reused:
-- a key that is deleted and created again moves to the front of the listing, while an
-- update keeps its row, and so its place. Timestamps are ISO 8601 UTC text with
-- milliseconds.
CREATE TABLE vss_db (
    sort_order      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_token      TEXT    NOT NULL,
    store_id        TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    value           BLOB,
    version         INTEGER NOT NULL,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (user_token, store_id, key)
);

-- vss_db_listing serves listings newest first; key and version trail the sort order so
-- that a listing reads the index alone, as the reference index INCLUDEs them.
CREATE INDEX vss_db_listing ON vss_db (user_token, store_id, sort_order DESC, key, version);
