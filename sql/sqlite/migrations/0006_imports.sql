-- 0006 adds vss_imports, the record of each store being imported from a dump
-- (storage.Importer): the import it belongs to (an id the importer derives from the
-- dump), how many entries of the store are committed, and whether the store is
-- complete. It is written in the same transaction as the rows it counts, so an
-- interrupted import resumes exactly where it stopped; the rows are deleted when the
-- whole import has finished.
CREATE TABLE IF NOT EXISTS vss_imports (
    user_token TEXT    NOT NULL,
    store_id   TEXT    NOT NULL,
    import_id  TEXT    NOT NULL,
    entries    INTEGER NOT NULL,
    done       INTEGER NOT NULL,
    PRIMARY KEY (user_token, store_id)
) WITHOUT ROWID;
