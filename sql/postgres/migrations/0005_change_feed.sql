-- 0005 adds the change feed and leases (storage.Feed, storage.Leases). vss_db keeps its
-- reference layout; a trigger on it records every change, so that every write is in the
-- feed whoever made it (this server's Connect and VSS HTTP bindings, the admin
-- commands, even a reference server sharing the database).
--
-- vss_feed_heads holds, per (user, store id), the sequence number of the store's latest
-- change. A write locks its store's row before it touches any key (BeginStoreWrite in
-- queries.sql) and holds the lock until it commits, and the trigger numbers each change
-- from it: a store's changes are numbered in commit order, and a reader that sees
-- change n sees every change before it. (A bigserial would not do: a transaction that
-- took number 5 may commit after the one that took 6.)
CREATE TABLE vss_feed_heads (
    user_token varchar(120) NOT NULL,
    store_id varchar(120) NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (user_token, store_id)
);

-- vss_changes is the feed: one row per key created, updated or deleted, kept for the
-- retention window and pruned as a prefix of each store's feed (PruneChanges). version
-- is the key's new version, or for a delete the version deleted; device_id is the
-- writing device (BeginStoreWrite sets it for the transaction, '' when unnamed).
CREATE TABLE vss_changes (
    user_token varchar(120) NOT NULL,
    store_id varchar(120) NOT NULL,
    seq bigint NOT NULL,
    key varchar(600) NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL,
    device_id text NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (user_token, store_id, seq)
);

CREATE INDEX vss_changes_changed_at_idx ON vss_changes (changed_at);

-- vss_record_change numbers and records one change of vss_db. It runs after each row
-- is written, in the writer's transaction; a write that fails leaves no change behind.
CREATE FUNCTION vss_record_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    r record;
    n bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    INSERT INTO vss_feed_heads AS h (user_token, store_id, seq)
    VALUES (r.user_token, r.store_id, 1)
    ON CONFLICT (user_token, store_id) DO UPDATE SET seq = h.seq + 1
    RETURNING h.seq INTO n;
    INSERT INTO vss_changes (user_token, store_id, seq, key, version, deleted, device_id, changed_at)
    VALUES (r.user_token, r.store_id, n, r.key, r.version, TG_OP = 'DELETE',
            COALESCE(current_setting('vss.device_id', true), ''), now());
    RETURN NULL;
END
$$;

CREATE TRIGGER vss_db_record_change
    AFTER INSERT OR UPDATE OR DELETE ON vss_db
    FOR EACH ROW EXECUTE FUNCTION vss_record_change();

-- vss_feed_listening reports whether a server instance listens for commits on this
-- database: the connections that LISTEN on the channel vss_changes carry the
-- application_name vss-feed-listener.
CREATE FUNCTION vss_feed_listening() RETURNS boolean
    LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'vss-feed-listener'
    )
$$;

-- vss_leases holds one row per lease name ever granted on a store. A release or an
-- expiry leaves the row, so that token, the fencing token of the latest grant, only
-- ever grows. expires_at is by the database's clock, which every instance shares.
CREATE TABLE vss_leases (
    user_token varchar(120) NOT NULL,
    store_id varchar(120) NOT NULL,
    name varchar(120) NOT NULL,
    holder varchar(120) NOT NULL,
    token bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (user_token, store_id, name)
);
