-- 0005 adds the change feed and leases of the embedded store (storage.Feed,
-- storage.Leases), with the PostgreSQL store's semantics (see its migration 0005). Every
-- statement may run again on a database that has them.
--
-- vss_feed_heads holds the sequence number of each followed store's latest change
-- (see the PostgreSQL store's migration 0005 for when a store is followed, and where
-- its feed starts). The one
-- write connection commits the writes one after another, so numbering the changes in
-- the writer's transaction numbers them in commit order.
CREATE TABLE IF NOT EXISTS vss_feed_heads (
    user_token TEXT    NOT NULL,
    store_id   TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (user_token, store_id)
) WITHOUT ROWID;

-- vss_changes is the feed: one row per key created, updated or deleted, kept for the
-- retention window. changed_at is Unix milliseconds.
CREATE TABLE IF NOT EXISTS vss_changes (
    user_token TEXT    NOT NULL,
    store_id   TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    key        TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    deleted    INTEGER NOT NULL,
    device_id  TEXT    NOT NULL,
    changed_at INTEGER NOT NULL,
    PRIMARY KEY (user_token, store_id, seq)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS vss_changes_changed_at ON vss_changes (changed_at);

-- vss_feed_writer holds the device of the write being applied: every write sets it
-- first, in its transaction (SetWriter), and the triggers below copy it into the
-- changes they record.
CREATE TABLE IF NOT EXISTS vss_feed_writer (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    device_id TEXT    NOT NULL
);

INSERT OR IGNORE INTO vss_feed_writer (id, device_id) VALUES (1, '');

-- The triggers record every change of a followed store in the writer's transaction:
-- numbered from the store's head, with the writing device and the time. A store is
-- followed once it has a head row, which FollowStore creates the first time its feed is
-- read; until then its writes record nothing.
CREATE TRIGGER IF NOT EXISTS vss_db_insert_change AFTER INSERT ON vss_db
WHEN EXISTS (SELECT 1 FROM vss_feed_heads h WHERE h.user_token = NEW.user_token AND h.store_id = NEW.store_id)
BEGIN
    UPDATE vss_feed_heads SET seq = seq + 1
    WHERE user_token = NEW.user_token AND store_id = NEW.store_id;
    INSERT INTO vss_changes (user_token, store_id, seq, key, version, deleted, device_id, changed_at)
    SELECT NEW.user_token, NEW.store_id, h.seq, NEW.key, NEW.version, 0,
           (SELECT w.device_id FROM vss_feed_writer w WHERE w.id = 1),
           CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM vss_feed_heads h
    WHERE h.user_token = NEW.user_token AND h.store_id = NEW.store_id;
END;

CREATE TRIGGER IF NOT EXISTS vss_db_update_change AFTER UPDATE ON vss_db
WHEN EXISTS (SELECT 1 FROM vss_feed_heads h WHERE h.user_token = NEW.user_token AND h.store_id = NEW.store_id)
BEGIN
    UPDATE vss_feed_heads SET seq = seq + 1
    WHERE user_token = NEW.user_token AND store_id = NEW.store_id;
    INSERT INTO vss_changes (user_token, store_id, seq, key, version, deleted, device_id, changed_at)
    SELECT NEW.user_token, NEW.store_id, h.seq, NEW.key, NEW.version, 0,
           (SELECT w.device_id FROM vss_feed_writer w WHERE w.id = 1),
           CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM vss_feed_heads h
    WHERE h.user_token = NEW.user_token AND h.store_id = NEW.store_id;
END;

CREATE TRIGGER IF NOT EXISTS vss_db_delete_change AFTER DELETE ON vss_db
WHEN EXISTS (SELECT 1 FROM vss_feed_heads h WHERE h.user_token = OLD.user_token AND h.store_id = OLD.store_id)
BEGIN
    UPDATE vss_feed_heads SET seq = seq + 1
    WHERE user_token = OLD.user_token AND store_id = OLD.store_id;
    INSERT INTO vss_changes (user_token, store_id, seq, key, version, deleted, device_id, changed_at)
    SELECT OLD.user_token, OLD.store_id, h.seq, OLD.key, OLD.version, 1,
           (SELECT w.device_id FROM vss_feed_writer w WHERE w.id = 1),
           CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM vss_feed_heads h
    WHERE h.user_token = OLD.user_token AND h.store_id = OLD.store_id;
END;

-- vss_leases holds one row per lease name ever granted on a store; token only ever
-- grows. expires_at is Unix milliseconds by the server's clock.
CREATE TABLE IF NOT EXISTS vss_leases (
    user_token TEXT    NOT NULL,
    store_id   TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    token      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (user_token, store_id, name)
) WITHOUT ROWID;
