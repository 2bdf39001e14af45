-- 0006 adds what an import of a dump (storage.Importer, docs/dump-format.md) records.
--
-- vss_imports holds a record for each store being imported: the import it belongs to,
-- how many of its entries are committed, whether the store is complete and, once it
-- is, the store's checksum. It is written in the same transaction as the rows it
-- counts, so an interrupted import resumes exactly where it stopped, and an import
-- given up (or refused as a bad dump) knows which stores to remove. The records are
-- deleted when the whole import has finished.
CREATE TABLE vss_imports (
    user_token varchar(120) NOT NULL,
    store_id   varchar(120) NOT NULL,
    import_id  text         NOT NULL,
    entries    bigint       NOT NULL,
    done       boolean      NOT NULL,
    sha256     bytea,
    PRIMARY KEY (user_token, store_id)
);

CREATE INDEX vss_imports_import_id_idx ON vss_imports (import_id);

-- vss_import_sessions holds, for an import sent to the server in chunks (the ImportData
-- RPC), where the next chunk starts and the dump reader's state there (a checkpoint of
-- its checksums and counts), so that any server instance can take the next chunk; once
-- the import is done, its result (done, stores, entries, sha256), so that a client whose
-- answer to the last chunk was lost and sends it again is told the import is done.
CREATE TABLE vss_import_sessions (
    user_token  varchar(120) NOT NULL,
    import_id   text         NOT NULL,
    next_offset bigint       NOT NULL,
    checkpoint  bytea,
    done        boolean      NOT NULL DEFAULT false,
    stores      bigint       NOT NULL DEFAULT 0,
    entries     bigint       NOT NULL DEFAULT 0,
    sha256      bytea,
    updated_at  timestamptz  NOT NULL,
    PRIMARY KEY (user_token, import_id)
);
