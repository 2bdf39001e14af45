-- 0003 creates vss_user_usage, where the store keeps each user's usage (the bytes of
-- keys and values, and the number of entries, across all of the user's stores) while
-- per-user quotas are on. A row is a cache of sums over vss_db: it is created on the
-- user's first write after the store opened with quotas on, and changed in the same
-- transaction as every write of that user. Opening the store deletes every row, since
-- a server with quotas off may have changed vss_db without keeping them.
CREATE TABLE vss_user_usage (
    user_token TEXT    PRIMARY KEY,
    bytes      INTEGER NOT NULL,
    keys       INTEGER NOT NULL
);
