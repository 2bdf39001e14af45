-- 0005 adds the change feed and leases (storage.Feed, storage.Leases). vss_db keeps its
-- reference layout; a trigger on it records the changes of the stores someone follows,
-- whoever writes them (this server's Connect and VSS HTTP bindings, the admin commands).
--
-- A store's changes are recorded from the moment it is first followed (a device asks for
-- its cursor or its changes: vss_follow_store), not before: a store nobody follows costs
-- its writes one shared advisory lock and an index probe, nothing written. The first
-- follow starts the store's feed at 0 if the store is empty, else at 1, so that a
-- reader that has nothing (cursor 0) is told to list the store, whose earlier history
-- the feed does not hold.
--
-- vss_feed_heads holds, per followed (user, store id), the sequence number of the
-- store's latest change. A write locks its store's row before it touches any key
-- (vss_begin_batch) and holds the lock until it commits, and the trigger numbers each
-- change from it: a store's changes are numbered in commit order, and a reader that sees
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
-- writing device (vss_begin_request sets it for the transaction, '' when unnamed).
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

-- vss_record_change numbers and records one change of a followed store. It runs after
-- each row is written, in the writer's transaction; a write that fails leaves no change
-- behind. vss_begin_batch tells it, through the transaction-local setting vss.feed,
-- whether the store is followed: '0' skips the trigger without calling it (its WHEN
-- clause), anything else (a write that did not call vss_begin_batch) looks.
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
    UPDATE vss_feed_heads h SET seq = h.seq + 1
    WHERE h.user_token = r.user_token AND h.store_id = r.store_id
    RETURNING h.seq INTO n;
    IF NOT FOUND THEN
        RETURN NULL; -- nobody follows the store
    END IF;
    INSERT INTO vss_changes (user_token, store_id, seq, key, version, deleted, device_id, changed_at)
    VALUES (r.user_token, r.store_id, n, r.key, r.version, TG_OP = 'DELETE',
            COALESCE(current_setting('vss.device_id', true), ''), now());
    RETURN NULL;
END
$$;

CREATE TRIGGER vss_db_record_change
    AFTER INSERT OR UPDATE OR DELETE ON vss_db
    FOR EACH ROW
    WHEN (current_setting('vss.feed', true) IS DISTINCT FROM '0')
    EXECUTE FUNCTION vss_record_change();

-- Writes and the first follow of a store exclude each other through an advisory lock of
-- the store, in the class 1448301361 ('VSS1') so as not to meet other users of advisory
-- locks, keyed by hashtext(user || '/' || store id) (two stores that share a key only
-- wait for each other's follow): every write holds it shared from vss_begin_batch until it ends, and
-- vss_follow_store takes it exclusive to create the head row. So a write that found no
-- head row has ended before the row is created, and every later write finds it.
-- vss_begin_batch runs first in the transaction of every write, whether it carries one
-- request (PutObjects, DeleteObject) or a batch of the group commit, with the user and
-- store id of each request and whether the server believes the store followed (its
-- hint). It
--   * takes each store's advisory lock shared (see above);
--   * locks the feed head row of each followed store, so that the transaction's changes
--     of it are numbered after those of every transaction that committed before and
--     before those of every transaction that commits after. Heads come first in the one
--     lock order, before the usage rows and the keys (see PutObjects in queries.sql),
--     in (user, store id) byte order, the order of the group commit's batches;
--   * tells the trigger whether to record changes at all (the setting vss.feed);
--   * raises VS428 if a hint was wrong, with the stores' actual states as the JSON array
--     [[user, store id, followed], ...] in the error's detail. The server then corrects
--     its hints and runs the transaction again: a followed store's requests must name
--     their device (vss_begin_request), which the server does only for the stores it
--     believes followed, and a store nobody follows costs its writes nothing else.
-- Each statement of a PL/pgSQL function sees what committed before it started, so the
-- head lookups see a follow that committed while the locks were awaited.
CREATE FUNCTION vss_begin_batch(p_users text[], p_stores text[], p_hinted boolean[]) RETURNS void
    LANGUAGE plpgsql
AS $$
DECLARE
    followed boolean;
    any_followed boolean := false;
    wrong jsonb;
BEGIN
    -- The server sends the requests in (user, store id) order; a store named twice is
    -- locked again by the transaction that holds it, which does not wait.
    FOR i IN 1 .. coalesce(array_length(p_users, 1), 0) LOOP
        PERFORM pg_advisory_xact_lock_shared(1448301361, hashtext(p_users[i] || '/' || p_stores[i]));
        PERFORM 1 FROM vss_feed_heads
        WHERE user_token = p_users[i] AND store_id = p_stores[i]
        FOR NO KEY UPDATE;
        followed := FOUND;
        any_followed := any_followed OR followed;
        IF followed <> p_hinted[i] THEN
            wrong := coalesce(wrong, '[]'::jsonb) || jsonb_build_array(jsonb_build_array(p_users[i], p_stores[i], followed));
        END IF;
    END LOOP;
    IF wrong IS NOT NULL THEN
        RAISE EXCEPTION 'the change feed state of a store changed' USING ERRCODE = 'VS428', DETAIL = wrong::text;
    END IF;
    PERFORM set_config('vss.feed', CASE WHEN any_followed THEN '1' ELSE '0' END, true);
END
$$;

-- vss_begin_request runs before the statement of a request that writes a store the
-- server believes followed, or that a lease fences. It names the writing device for the
-- changes the statement records (the setting vss.device_id, '' for none) and, when
-- p_lease is not empty, checks that lease is held with p_token and not expired (by the
-- database's clock), keeping its row locked FOR SHARE until the transaction ends, so
-- that no new grant can commit before the write does. If the lease is not held it
-- raises VS412, which undoes the transaction.
CREATE FUNCTION vss_begin_request(p_user text, p_store text, p_device text, p_lease text, p_token bigint) RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM set_config('vss.device_id', p_device, true);
    IF p_lease <> '' THEN
        PERFORM 1 FROM vss_leases
        WHERE user_token = p_user AND store_id = p_store AND name = p_lease
          AND token = p_token AND expires_at > clock_timestamp()
        FOR SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'lease not held' USING ERRCODE = 'VS412';
        END IF;
    END IF;
END
$$;

-- vss_follow_store makes sure the store's changes are recorded and returns its head.
-- The first call creates the head row under the store's advisory lock, taken exclusive
-- (see above), at 0 if the store holds no key and at 1 otherwise.
CREATE FUNCTION vss_follow_store(p_user text, p_store text) RETURNS bigint
    LANGUAGE plpgsql
AS $$
DECLARE
    h bigint;
BEGIN
    SELECT seq INTO h FROM vss_feed_heads WHERE user_token = p_user AND store_id = p_store;
    IF FOUND THEN
        RETURN h;
    END IF;
    PERFORM pg_advisory_xact_lock(1448301361, hashtext(p_user || '/' || p_store));
    INSERT INTO vss_feed_heads (user_token, store_id, seq)
    SELECT p_user, p_store,
           CASE WHEN EXISTS (SELECT 1 FROM vss_db WHERE user_token = p_user AND store_id = p_store)
                THEN 1 ELSE 0 END
    ON CONFLICT (user_token, store_id) DO NOTHING;
    SELECT seq INTO h FROM vss_feed_heads WHERE user_token = p_user AND store_id = p_store;
    RETURN h;
END
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
