-- 0003 creates vss_user_usage, where the store keeps each user's usage (the bytes of
-- keys and values, and the number of entries, across all of the user's stores) while
-- per-user quotas are on. vss_db is left as it is: the reference server keeps using it
-- unchanged.
--
-- A row is a cache of sums over vss_db, not a source of truth. It is created on the
-- user's first write after the server started with quotas on, from the user's rows in
-- vss_db, and then changed in the same transaction as every write of that user, which
-- holds a lock on it: the row lock serializes the writes of one user (and only of that
-- user) while quotas are on. A server that starts deletes every row (a server with
-- quotas off, or the reference server, may have changed vss_db without keeping them),
-- so usage is recounted rather than trusted after any restart. That is why this
-- migration does not fill the table from existing data.
CREATE TABLE vss_user_usage (
    user_token varchar(120) PRIMARY KEY,
    bytes bigint NOT NULL,
    keys bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
