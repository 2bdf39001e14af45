-- name: GetObject :one
-- GetObject reads one entry.
SELECT key, value, version
FROM vss_db
WHERE user_token = @user_token AND store_id = @store_id AND key = @key;

-- name: DeleteObject :exec
-- DeleteObject removes an entry if its version matches, or unconditionally for version
-- -1. Under READ COMMITTED a row updated concurrently is re-checked at its newest
-- version before it is deleted, so the version condition is never tested against a
-- stale row.
DELETE FROM vss_db
WHERE user_token = @user_token AND store_id = @store_id AND key = @key
  AND (@version::bigint = -1 OR version = @version::bigint);

-- name: ListKeyVersions :many
-- ListKeyVersions reads, in one snapshot, the store's global version row (when asked,
-- flagged by is_global) and one page of keys newest-created first. The prefix is
-- compared with starts_with, so '%' and '_' in it are literal characters.
SELECT page.key, page.version, page.sort_order, page.is_global
FROM (
    SELECT g.key, g.version, g.sort_order, true AS is_global
    FROM vss_db g
    WHERE @with_global_version::boolean
      AND g.user_token = @user_token AND g.store_id = @store_id
      AND g.key = @global_version_key::text
    UNION ALL
    (
        SELECT k.key, k.version, k.sort_order, false AS is_global
        FROM vss_db k
        WHERE k.user_token = @user_token AND k.store_id = @store_id
          AND k.sort_order < @before::bigint
          AND starts_with(k.key, @prefix::text)
          AND k.key <> @global_version_key::text
        ORDER BY k.sort_order DESC
        LIMIT @page_limit::bigint
    )
) page
ORDER BY page.is_global DESC, page.sort_order DESC;

-- name: PutObjects :one
-- PutObjects applies a whole PutObjectRequest in one statement. The put items (put_keys,
-- put_versions, put_values) and the delete items (delete_keys, delete_versions) arrive
-- as parallel arrays, with distinct keys. It returns ok = false and writes nothing when
-- a version condition fails; otherwise it writes everything and returns how many rows it
-- wrote, one per item. When it must give up after writing rows it raises an error
-- instead, which undoes them: VS409 for a failed condition (a conflict), 40001
-- (serialization failure, which the store retries) when a row to delete was created
-- after the statement's snapshot. (pgx then prepares the statement again on that
-- connection at its next use: it drops a statement that failed from its cache.)
--
-- One lock order. Every statement that writes vss_db takes its row locks, and waits for
-- concurrent inserts of the same keys, in key order (byte order: COLLATE "C", whatever the
-- database's collation) and in a single pass: claimed below, UpsertObjects, and
-- DeleteObject (one key). A transaction holding key k only ever waits for a key after k,
-- so racing requests cannot deadlock, whatever keys and item kinds they mix.
-- (PutObjectsQuota is serialized per user by the usage lock it takes first.) A
-- transaction of the store's group commit runs several requests one after another and
-- keeps to the same order across them: it takes requests in (user, store id) order and,
-- within one user's store, only a request whose keys it does not hold yet all come after
-- those it holds (see commitBatch).
--
-- Why this is correct under concurrency, at READ COMMITTED:
--
--  1. claimed is an INSERT ... ON CONFLICT of every item, in key order. For a key
--     without a live row it inserts the item's row (version 1, the item's value, the
--     item's sort_order), after waiting for a concurrent insert or delete of the key to
--     end. For a key with a live row, DO UPDATE locks the row's newest version, even one
--     committed after the statement's snapshot (waiting for its writer if need be), and
--     writes a put item whose condition holds there: version -1 (stores 1) or version N
--     equal to the row's (stores N+1; never past 2^63-1). The row of a create
--     (version 0), of a put whose version differs, or of a delete item is locked and
--     left alone. RETURNING yields the rows inserted or written, with their sort_order:
--     the item's own one for a row it inserted, the row's older one for a row it
--     updated. Once claimed has run, the statement holds every key of the request
--     until it ends; that is the instant at which every item is judged.
--  2. verdict judges each put from claimed alone: a create needs its row inserted, a
--     put at N its row updated (an inserted row means the key did not exist); an
--     unconditional put is always written. A delete needs a live row: a row claimed
--     inserted for it means the key did not exist. locked reads the version of the
--     others, FOR UPDATE (locks claimed already holds, so without waiting), through the
--     snapshot, following a row's updates to its newest version. A row committed after
--     the snapshot is locked but out of the snapshot's reach: that delete is retried
--     with a fresh snapshot (40001).
--  3. deleted removes the locked rows of the delete items, only when every item passed.
--     Any failed condition after claimed wrote something raises VS409, undoing it all.
--
-- Listing order. items takes one sort_order per item from the table's sequence in
-- request order, and claimed stores it in the rows it inserts: keys created together are
-- listed in the order of the request (the newest-first listing shows the last one
-- first), as the reference server, which inserts them one by one, lists them. An update
-- keeps the row's sort_order, so the key keeps its place.
--
-- Every read of vss_db below names its rows by the whole primary key, so the statement
-- costs O(items · log rows) whatever the planner estimates. (Joining on the key alone is
-- not enough: a generic plan, which cannot know the arrays' lengths, may scan every row
-- of the store through the key prefix and join afterwards.) expected is a JSON object
-- from key to expected version, so that DO UPDATE finds an item's version in O(log items).
WITH items AS MATERIALIZED (
    -- Set-returning functions in one select list advance in step: row i pairs the
    -- i-th element of each array. Rows come, and nextval is called, in array order.
    SELECT p.key, p.version, p.value, false AS is_delete,
           nextval((SELECT pg_get_serial_sequence('vss_db', 'sort_order'))::regclass) AS sort_order
    FROM (
        SELECT unnest(@put_keys::text[]) AS key,
               unnest(@put_versions::bigint[]) AS version,
               unnest(@put_values::bytea[]) AS value
    ) p
    UNION ALL
    SELECT d.key, d.version, NULL::bytea AS value, true AS is_delete,
           nextval((SELECT pg_get_serial_sequence('vss_db', 'sort_order'))::regclass) AS sort_order
    FROM (
        SELECT unnest(@delete_keys::text[]) AS key,
               unnest(@delete_versions::bigint[]) AS version
    ) d
),
expected AS MATERIALIZED (
    SELECT COALESCE(jsonb_object_agg(i.key, i.version), '{}'::jsonb) AS versions
    FROM items i
    WHERE NOT i.is_delete
),
claimed AS (
    INSERT INTO vss_db AS v (user_token, store_id, key, value, version, created_at, last_updated_at, sort_order)
    SELECT @user_token, @store_id, i.key, i.value, 1, now(), now(), i.sort_order
    FROM items i
    ORDER BY i.key COLLATE "C"
    ON CONFLICT (user_token, store_id, key) DO UPDATE
    SET value = excluded.value,
        version = CASE
            WHEN ((SELECT e.versions FROM expected e) ->> excluded.key)::bigint = -1 THEN 1
            ELSE v.version + 1
        END,
        last_updated_at = excluded.last_updated_at
    WHERE ((SELECT e.versions FROM expected e) ->> excluded.key)::bigint = -1
       OR (((SELECT e.versions FROM expected e) ->> excluded.key)::bigint = v.version
           AND v.version < 9223372036854775807)
    RETURNING v.key, v.sort_order
),
locked AS MATERIALIZED (
    SELECT i.key, i.version AS expected, r.version AS current
    FROM items i
    CROSS JOIN LATERAL (
        SELECT r.version
        FROM vss_db r
        WHERE r.user_token = @user_token AND r.store_id = @store_id AND r.key = i.key
        FOR UPDATE
    ) r
    -- The second condition is a one-time filter: claimed runs to its end, taking every
    -- lock, before any row is read here.
    WHERE i.is_delete AND (SELECT count(*) FROM claimed) >= 0
),
verdict AS MATERIALIZED (
    SELECT
        (EXISTS (
            SELECT 1
            FROM items i
            LEFT JOIN claimed c ON c.key = i.key
            WHERE CASE
                WHEN i.is_delete THEN c.key IS NOT NULL
                WHEN i.version = 0 THEN c.sort_order IS DISTINCT FROM i.sort_order
                WHEN i.version > 0 THEN c.key IS NULL OR c.sort_order = i.sort_order
                ELSE false
            END
        ) OR EXISTS (
            SELECT 1 FROM locked l WHERE l.expected <> -1 AND l.current <> l.expected
        )) AS conflict,
        EXISTS (
            SELECT 1
            FROM items i
            WHERE (i.is_delete OR i.version = -1)
              AND NOT EXISTS (SELECT 1 FROM claimed c WHERE c.key = i.key)
              AND NOT EXISTS (SELECT 1 FROM locked l WHERE l.key = i.key)
        ) AS stale,
        EXISTS (SELECT 1 FROM claimed) AS wrote
),
deleted AS (
    DELETE FROM vss_db v
    USING locked l
    WHERE cardinality(@delete_keys::text[]) > 0
      AND v.user_token = @user_token AND v.store_id = @store_id AND v.key = l.key
      AND v.key = ANY(@delete_keys::text[])
      AND (SELECT NOT vd.conflict AND NOT vd.stale FROM verdict vd)
    RETURNING 1
)
SELECT
    (CASE
        WHEN v.conflict AND v.wrote THEN vss_abort('VS409', 'version conflict')
        WHEN v.conflict THEN false
        WHEN v.stale THEN vss_abort('40001', 'a key to delete was created concurrently')
        ELSE true
    END)::boolean AS ok,
    ((SELECT count(*) FROM claimed) + (SELECT count(*) FROM deleted))::bigint AS written
FROM verdict v;

-- name: UpsertObjects :one
-- UpsertObjects is PutObjects for a request whose items are all puts at version -1 (every
-- write LDK makes): nothing can fail a condition, so it is a plain upsert of every item in
-- key order (the one lock order, see PutObjects), storing version 1 and keeping an
-- existing row's sort_order. A new row takes its sort_order from items, allocated in
-- request order as in PutObjects. It costs PostgreSQL a fraction of the general
-- statement. It returns how many rows it wrote.
WITH items AS MATERIALIZED (
    SELECT i.key, i.value,
           nextval((SELECT pg_get_serial_sequence('vss_db', 'sort_order'))::regclass) AS sort_order
    FROM (SELECT unnest(@keys::text[]) AS key, unnest(@vals::bytea[]) AS value) i
),
written AS (
    INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at, sort_order)
    SELECT @user_token, @store_id, i.key, i.value, 1, now(), now(), i.sort_order
    FROM items i
    ORDER BY i.key COLLATE "C"
    ON CONFLICT (user_token, store_id, key) DO UPDATE
    SET value = excluded.value, version = 1, last_updated_at = excluded.last_updated_at
    RETURNING 1
)
SELECT count(*) AS written FROM written;

-- name: UseChallenge :one
-- UseChallenge records that the LNURL-auth challenge k1 was answered, and deletes up to
-- cleanup_limit challenges that expired by the database's clock, other than k1 itself,
-- so the table keeps only live challenges. used is 1 when k1 was recorded now and 0
-- when it had been used before (ON CONFLICT DO NOTHING waits for a concurrent insert of
-- the same k1 to commit, then does nothing: exactly one of them gets 1). Expired rows
-- locked by a concurrent call are skipped rather than waited for.
WITH expired AS (
    DELETE FROM vss_auth_challenges
    WHERE k1 IN (
        SELECT e.k1
        FROM vss_auth_challenges e
        WHERE e.expires_at < now() AND e.k1 <> @k1::bytea
        ORDER BY e.expires_at
        LIMIT @cleanup_limit::bigint
        FOR UPDATE SKIP LOCKED
    )
    RETURNING 1
),
inserted AS (
    INSERT INTO vss_auth_challenges (k1, expires_at)
    VALUES (@k1::bytea, @expires_at::timestamptz)
    ON CONFLICT (k1) DO NOTHING
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM inserted)::bigint AS used,
    (SELECT count(*) FROM expired)::bigint AS forgotten;

-- name: Secret :one
-- Secret stores secret under name unless a secret is stored there already, and
-- returns the stored one. The no-op DO UPDATE locks and returns the newest committed
-- row even when a concurrent call inserted it after this statement's snapshot was
-- taken (where ON CONFLICT DO NOTHING with a SELECT would see no row), so one round
-- trip always yields the first stored secret.
INSERT INTO vss_auth_secrets (name, secret)
VALUES (@name, @secret)
ON CONFLICT (name) DO UPDATE SET secret = vss_auth_secrets.secret
RETURNING secret;

-- Per-user quotas. While they are on, a PutObjects or DeleteObject is one pipelined batch
-- of two statements, LockUsage and then PutObjectsQuota or DeleteObjectQuota, sent in
-- one round trip and run in one implicit transaction (the batch ends with a single
-- Sync): if either statement fails, neither is applied. LockUsage locks the user's
-- vss_user_usage row first, so writes of one user take turns on it, and every write of
-- that user that committed before the lock was granted is visible to the second
-- statement, which takes its snapshot after LockUsage returned (READ COMMITTED takes a
-- snapshot per statement). The second statement therefore sees exactly the rows its
-- predecessors left, and the usage row always equals the sums over the user's rows.

-- name: LockUsage :exec
-- LockUsage locks the user's usage row, creating it first from the user's rows in
-- vss_db when there is none (the first write after the server started). The sums are
-- only computed when the row is missing: the NOT EXISTS over existing is a one-time
-- filter evaluated before vss_db is read. If a concurrent call created the row first,
-- the no-op DO UPDATE waits for it and locks that row instead.
WITH existing AS MATERIALIZED (
    SELECT u.user_token
    FROM vss_user_usage u
    WHERE u.user_token = @user_token
    FOR UPDATE
),
counted AS MATERIALIZED (
    SELECT COALESCE(sum(octet_length(v.key) + COALESCE(octet_length(v.value), 0)), 0)::bigint AS bytes,
           count(*)::bigint AS keys
    FROM vss_db v
    WHERE v.user_token = @user_token AND NOT EXISTS (SELECT 1 FROM existing)
)
INSERT INTO vss_user_usage (user_token, bytes, keys)
SELECT @user_token, c.bytes, c.keys
FROM counted c
WHERE NOT EXISTS (SELECT 1 FROM existing)
ON CONFLICT (user_token) DO UPDATE SET user_token = excluded.user_token;

-- name: PutObjectsQuota :one
-- PutObjectsQuota is PutObjects with the user's quota: it runs after LockUsage in the
-- same transaction. LockUsage makes the writes of one user take turns, so no write of
-- the user's keys runs concurrently with this statement (other than one of a server that
-- shares the database with quotas off), and its snapshot, taken after the lock was
-- granted, holds every committed write of the user: the statement can lock the existing
-- rows first and insert the new ones afterwards without meeting a concurrent writer.
-- locked takes a row lock on every existing row the request names and reads its
-- version; every writer below runs only if every condition holds, so a failed condition
-- writes nothing; a version-0 item that meets a row created concurrently after all (by a
-- server with quotas off) raises unique_violation, a conflict. As in PutObjects, new rows
-- take their sort_order in request order. locked also reads the size of every existing row the request names; delta is what
-- the request changes (bytes: the new keys and values minus the rows they replace or
-- delete; keys: the puts of keys that do not exist minus the deletes), and allowed
-- checks it against the limits, counting only the amounts the request raises. Nothing
-- is written unless both the version conditions and the quota hold; the usage row is
-- updated by the same statement. bytes_ok and keys_ok tell which limit failed.
WITH items AS MATERIALIZED (
    -- As in PutObjects, sort_order is taken in request order for the rows created.
    SELECT p.key, p.version, p.value, false AS is_delete,
           nextval((SELECT pg_get_serial_sequence('vss_db', 'sort_order'))::regclass) AS sort_order
    FROM (
        SELECT unnest(@put_keys::text[]) AS key,
               unnest(@put_versions::bigint[]) AS version,
               unnest(@put_values::bytea[]) AS value
    ) p
    UNION ALL
    SELECT d.key, d.version, NULL::bytea AS value, true AS is_delete, NULL::bigint AS sort_order
    FROM (
        SELECT unnest(@delete_keys::text[]) AS key,
               unnest(@delete_versions::bigint[]) AS version
    ) d
),
locked AS MATERIALIZED (
    SELECT i.key, i.version AS expected, i.value, i.is_delete, v.version AS current, v.current_size
    FROM (SELECT * FROM items ORDER BY key COLLATE "C") i
    CROSS JOIN LATERAL (
        SELECT r.version, octet_length(r.key) + COALESCE(octet_length(r.value), 0) AS current_size
        FROM vss_db r
        WHERE r.user_token = @user_token AND r.store_id = @store_id AND r.key = i.key
        FOR UPDATE
    ) v
),
checked AS MATERIALIZED (
    SELECT
        NOT EXISTS (
            SELECT 1
            FROM locked l
            WHERE (NOT l.is_delete AND l.expected = 0)
               OR (l.expected <> -1 AND l.current <> l.expected)
        )
        AND (SELECT count(*) FROM locked l WHERE l.is_delete OR l.expected > 0)
          = (SELECT count(*) FROM items i WHERE i.is_delete OR i.version > 0) AS ok
),
usage AS MATERIALIZED (
    SELECT u.bytes, u.keys
    FROM vss_user_usage u
    WHERE u.user_token = @user_token
    FOR UPDATE
),
delta AS MATERIALIZED (
    SELECT
        (SELECT COALESCE(sum(octet_length(i.key) + COALESCE(octet_length(i.value), 0)), 0) FROM items i WHERE NOT i.is_delete)
          - (SELECT COALESCE(sum(l.current_size), 0) FROM locked l) AS bytes,
        (SELECT count(*) FROM items i WHERE NOT i.is_delete) - (SELECT count(*) FROM locked l) AS keys
),
allowed AS MATERIALIZED (
    SELECT
        d.bytes, d.keys,
        (d.bytes <= 0 OR COALESCE((SELECT u.bytes FROM usage u), 0) + d.bytes <= @max_bytes::bigint) AS bytes_ok,
        (d.keys <= 0 OR COALESCE((SELECT u.keys FROM usage u), 0) + d.keys <= @max_keys::bigint) AS keys_ok
    FROM delta d
),
proceed AS MATERIALIZED (
    SELECT c.ok AND a.bytes_ok AND a.keys_ok AS write
    FROM checked c, allowed a
),
created AS (
    INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at, sort_order)
    SELECT @user_token, @store_id, i.key, i.value, 1, now(), now(), i.sort_order
    FROM items i
    WHERE NOT i.is_delete AND i.version = 0 AND (SELECT p.write FROM proceed p)
    ORDER BY i.key COLLATE "C"
    RETURNING 1
),
upserted AS (
    INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at, sort_order)
    SELECT @user_token, @store_id, i.key, i.value, 1, now(), now(), i.sort_order
    FROM items i
    WHERE NOT i.is_delete AND i.version = -1 AND (SELECT p.write FROM proceed p)
    ORDER BY i.key COLLATE "C"
    ON CONFLICT (user_token, store_id, key) DO UPDATE
    SET value = excluded.value, version = 1, last_updated_at = excluded.last_updated_at
    RETURNING 1
),
updated AS (
    INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
    SELECT @user_token, @store_id, l.key, l.value, l.current + 1, now(), now()
    FROM locked l
    WHERE NOT l.is_delete AND l.expected > 0 AND (SELECT p.write FROM proceed p)
    ON CONFLICT (user_token, store_id, key) DO UPDATE
    SET value = excluded.value, version = excluded.version, last_updated_at = excluded.last_updated_at
    RETURNING 1
),
deleted AS (
    DELETE FROM vss_db v
    USING locked l
    WHERE cardinality(@delete_keys::text[]) > 0
      AND v.user_token = @user_token AND v.store_id = @store_id AND v.key = l.key
      AND v.key = ANY(@delete_keys::text[])
      AND l.is_delete
      AND (SELECT p.write FROM proceed p)
    RETURNING 1
),
counted AS (
    UPDATE vss_user_usage u
    SET bytes = u.bytes + a.bytes, keys = u.keys + a.keys, updated_at = now()
    FROM allowed a
    WHERE u.user_token = @user_token
      AND (SELECT p.write FROM proceed p)
      AND (a.bytes <> 0 OR a.keys <> 0)
    RETURNING 1
)
SELECT
    checked.ok::boolean AS ok,
    allowed.bytes_ok::boolean AS bytes_ok,
    allowed.keys_ok::boolean AS keys_ok,
    ((SELECT count(*) FROM created)
     + (SELECT count(*) FROM upserted)
     + (SELECT count(*) FROM updated)
     + (SELECT count(*) FROM deleted))::bigint AS written,
    (SELECT count(*) FROM counted)::bigint AS counted
FROM checked, allowed;

-- name: DeleteObjectQuota :exec
-- DeleteObjectQuota is DeleteObject that also takes the deleted row off the user's
-- usage; it runs after LockUsage in the same transaction.
WITH deleted AS (
    DELETE FROM vss_db
    WHERE user_token = @user_token AND store_id = @store_id AND key = @key
      AND (@version::bigint = -1 OR version = @version::bigint)
    RETURNING octet_length(key) + COALESCE(octet_length(value), 0) AS size
)
UPDATE vss_user_usage u
SET bytes = u.bytes - d.size, keys = u.keys - 1, updated_at = now()
FROM deleted d
WHERE u.user_token = @user_token;

-- name: ClearUsage :exec
-- ClearUsage forgets every user's usage; each is recounted at the user's next write.
DELETE FROM vss_user_usage;

-- name: UserUsage :many
-- UserUsage sums the rows of every user, or of one user when user_token is not empty,
-- straight from vss_db: bytes of keys and values, entries, and distinct store ids.
SELECT v.user_token,
       COALESCE(sum(octet_length(v.key) + COALESCE(octet_length(v.value), 0)), 0)::bigint AS bytes,
       count(*)::bigint AS keys,
       count(DISTINCT v.store_id)::bigint AS stores
FROM vss_db v
WHERE @user_token::text = '' OR v.user_token = @user_token::text
GROUP BY v.user_token
ORDER BY v.user_token;

-- name: DeleteUserObjects :execrows
-- DeleteUserObjects deletes every entry of one user, in all stores.
DELETE FROM vss_db
WHERE user_token = @user_token;

-- name: DeleteUserUsage :exec
-- DeleteUserUsage forgets the usage row of one user.
DELETE FROM vss_user_usage
WHERE user_token = @user_token;

-- The change feed and leases (migration 0005).

-- name: BeginBatch :exec
-- BeginBatch runs first in the transaction of every write, one request or a group
-- commit batch (in the same pipelined batch): it takes the write locks of the stores
-- written and the feed heads of those followed, and checks the server's hints of which
-- are, raising VS428 if one is wrong (see vss_begin_batch in migration 0005).
SELECT vss_begin_batch(@users::text[], @store_ids::text[], @hinted::boolean[]);

-- name: BeginRequest :exec
-- BeginRequest runs before the statement of a request that writes a followed store or is
-- fenced by a lease: it names the writing device and checks the lease, raising VS412 if
-- it is not held (see vss_begin_request in migration 0005).
SELECT vss_begin_request(@user_token::text, @store_id::text, @device_id::text, @lease_name::text, @lease_token::bigint);

-- name: FollowStore :one
-- FollowStore starts recording the store's changes if nobody followed it before, and
-- returns its head (see vss_follow_store in migration 0005).
SELECT vss_follow_store(@user_token::text, @store_id::text)::bigint AS head;

-- name: ListChanges :many
-- ListChanges reads, in one snapshot, a store's feed head (-1 when nobody follows the
-- store: see FollowStore), its oldest retained change (0 when none) and up to page_limit changes after the sequence number after. The
-- first row always exists; its change columns are NULL when there is no change. With
-- with_values, a change that is not a delete carries the key's value when the key still
-- holds that version, and the page stops before the change whose value would take the
-- values beyond max_value_bytes (the first change always passes).
WITH state AS MATERIALIZED (
    SELECT COALESCE((SELECT h.seq FROM vss_feed_heads h
                     WHERE h.user_token = @user_token AND h.store_id = @store_id), -1)::bigint AS head,
           COALESCE((SELECT min(c.seq) FROM vss_changes c
                     WHERE c.user_token = @user_token AND c.store_id = @store_id), 0)::bigint AS oldest
),
page AS MATERIALIZED (
    SELECT c.seq, c.key, c.version, c.deleted, c.device_id, c.changed_at, v.value, (v.key IS NOT NULL)::boolean AS has_value,
           sum(COALESCE(octet_length(v.value), 0)) OVER (ORDER BY c.seq) - COALESCE(octet_length(v.value), 0) AS before_bytes,
           row_number() OVER (ORDER BY c.seq) AS n
    FROM (
        SELECT *
        FROM vss_changes
        WHERE user_token = @user_token AND store_id = @store_id AND seq > @after::bigint
        ORDER BY seq
        LIMIT @page_limit::bigint
    ) c
    LEFT JOIN vss_db v
      ON @with_values::boolean AND NOT c.deleted
     AND v.user_token = c.user_token AND v.store_id = c.store_id AND v.key = c.key
     AND v.version = c.version
)
SELECT s.head, s.oldest, p.seq, p.key, p.version, p.deleted, p.device_id, p.changed_at, p.value, p.has_value
FROM state s
LEFT JOIN page p ON p.n = 1 OR p.before_bytes < @max_value_bytes::bigint
ORDER BY p.seq;

-- name: PruneChanges :execrows
-- PruneChanges deletes the changes older than the retention window: in each store, every
-- change up to the newest one that is older than cutoff, so that what remains of a
-- store's feed is always a suffix of it (the times of one store's changes are not
-- strictly in sequence order: a transaction's time is when it began).
DELETE FROM vss_changes c
USING (
    SELECT o.user_token, o.store_id, max(o.seq) AS upto
    FROM vss_changes o
    WHERE o.changed_at < now() - make_interval(secs => @retention_seconds::float8)
    GROUP BY o.user_token, o.store_id
) old
WHERE c.user_token = old.user_token AND c.store_id = old.store_id AND c.seq <= old.upto;

-- name: NotifyCommits :exec
-- NotifyCommits wakes the change streams of every server instance listening on the
-- vss_changes channel for the stores named in payloads (see storage.Feed.WatchCommits).
SELECT pg_notify('vss_changes', p)
FROM unnest(@payloads::text[]) AS p;

-- name: AcquireLease :one
-- AcquireLease grants a lease unless a grant is in force: it creates the lease's row at
-- token 1, or takes over a row whose grant expired (or was released) with the next
-- token. No row comes back when the lease is held.
INSERT INTO vss_leases AS l (user_token, store_id, name, holder, token, expires_at)
VALUES (@user_token, @store_id, @name, @holder, 1, clock_timestamp() + make_interval(secs => @ttl_seconds::float8))
ON CONFLICT (user_token, store_id, name) DO UPDATE
SET holder = excluded.holder, token = l.token + 1, expires_at = excluded.expires_at
WHERE l.expires_at <= clock_timestamp()
RETURNING l.holder, l.token, l.expires_at, clock_timestamp()::timestamptz AS now;

-- name: RenewLease :one
-- RenewLease extends the grant with token if it is still in force.
UPDATE vss_leases
SET expires_at = clock_timestamp() + make_interval(secs => @ttl_seconds::float8)
WHERE user_token = @user_token AND store_id = @store_id AND name = @name
  AND token = @token AND expires_at > clock_timestamp()
RETURNING holder, token, expires_at, clock_timestamp()::timestamptz AS now;

-- name: ReleaseLease :execrows
-- ReleaseLease ends the grant with token if it is still in force.
UPDATE vss_leases
SET expires_at = clock_timestamp()
WHERE user_token = @user_token AND store_id = @store_id AND name = @name
  AND token = @token AND expires_at > clock_timestamp();

-- name: GetLease :one
-- GetLease reads a lease's latest grant and the database's time.
SELECT holder, token, expires_at, clock_timestamp()::timestamptz AS now
FROM vss_leases
WHERE user_token = @user_token AND store_id = @store_id AND name = @name;

-- name: LockUserFeeds :exec
-- LockUserFeeds locks the feed heads of every store of a user, in store id order (the
-- order of the group commit's batches), before DeleteUser deletes the user's keys, so
-- that it takes its locks in the one lock order of writes.
SELECT 1
FROM vss_feed_heads
WHERE user_token = @user_token
ORDER BY store_id COLLATE "C"
FOR UPDATE;

-- name: DeleteUserChanges :exec
-- DeleteUserChanges forgets every recorded change of a user. The heads stay, so every
-- cursor a device holds is now older than the feed: its next read is CURSOR_EXPIRED and
-- it lists its store again.
DELETE FROM vss_changes
WHERE user_token = @user_token;

-- name: ExpireUserLeases :exec
-- ExpireUserLeases ends every lease grant of a user. The rows stay, so that fencing
-- tokens keep growing.
UPDATE vss_leases
SET expires_at = least(expires_at, clock_timestamp())
WHERE user_token = @user_token;

-- name: ExportStores :many
-- ExportStores lists the stores of a user in byte order of store id (the dump's store
-- order, whatever the database's collation), each once, with its global version, NULL
-- when the store never set one.
SELECT s.store_id::text AS store_id, g.version AS global_version
FROM (SELECT DISTINCT v.store_id FROM vss_db v WHERE v.user_token = @user_token) s
LEFT JOIN vss_db g
    ON g.user_token = @user_token AND g.store_id = s.store_id AND g.key = 'global_version'
ORDER BY s.store_id COLLATE "C";

-- name: ExportEntries :many
-- ExportEntries reads the next page of a store's entries with their values in creation
-- order, oldest first (the dump's entry order), after the sort order of the previous
-- page; the global version row is included. A page holds at most max_rows entries and
-- ends before the first entry whose predecessors in the page total max_bytes of values,
-- so it holds at most max_bytes plus one value, and always its first entry however
-- large. sizes reads the value sizes without the values (octet_length of a TOASTed value
-- reads its header), and only the page's values are read.
WITH sizes AS MATERIALIZED (
    SELECT v.sort_order, COALESCE(octet_length(v.value), 0)::bigint AS size
    FROM vss_db v
    WHERE v.user_token = @user_token AND v.store_id = @store_id AND v.sort_order > @after::bigint
    ORDER BY v.sort_order
    LIMIT @max_rows::bigint
),
page AS MATERIALIZED (
    SELECT z.sort_order,
           (sum(z.size) OVER (ORDER BY z.sort_order ROWS UNBOUNDED PRECEDING) - z.size)::bigint AS bytes_before
    FROM sizes z
)
SELECT d.key, d.version, d.value, d.sort_order
FROM page p
JOIN vss_db d ON d.sort_order = p.sort_order
WHERE p.bytes_before < @max_bytes::bigint
ORDER BY d.sort_order;

-- name: GetImport :one
-- GetImport reads the import record of a store and locks it, so that two importers of
-- one store take turns.
SELECT import_id, entries, done, sha256
FROM vss_imports
WHERE user_token = @user_token AND store_id = @store_id
FOR UPDATE;

-- name: StoreHasRows :one
-- StoreHasRows tells whether a store holds any row, its global version included.
SELECT EXISTS (
    SELECT 1 FROM vss_db WHERE user_token = @user_token AND store_id = @store_id
) AS has_rows;

-- name: PutImport :exec
-- PutImport creates or updates the import record of a store.
INSERT INTO vss_imports (user_token, store_id, import_id, entries, done, sha256)
VALUES (@user_token, @store_id, @import_id, @entries, @done, @sha256)
ON CONFLICT (user_token, store_id) DO UPDATE
SET import_id = excluded.import_id, entries = excluded.entries, done = excluded.done,
    sha256 = excluded.sha256;

-- name: DeleteImport :exec
-- DeleteImport forgets the records of an import, of one user or, with user_token empty,
-- of every user (a database import).
DELETE FROM vss_imports
WHERE import_id = @import_id AND (@user_token::text = '' OR user_token = @user_token::text);

-- name: ImportedStores :many
-- ImportedStores lists and locks the stores an import has records of, of one user or,
-- with user_token empty, of every user.
SELECT user_token::text AS user_token, store_id::text AS store_id
FROM vss_imports
WHERE import_id = @import_id AND (@user_token::text = '' OR user_token = @user_token::text)
ORDER BY user_token COLLATE "C", store_id COLLATE "C"
FOR UPDATE;

-- name: LockStoreWrite :exec
-- LockStoreWrite takes a store's write lock shared, as vss_begin_batch does for every
-- write (migration 0005), for writes that do not go through it (imports), so that the
-- first follow of the store sees either none or all of their rows. The trigger then
-- records their changes if the store is followed.
SELECT pg_advisory_xact_lock_shared(1448301361, hashtext(@user_token::text || '/' || @store_id::text));

-- name: GetImportSession :one
-- GetImportSession reads where an import sent in chunks stands, and locks it, so that
-- two chunks of one import take turns.
SELECT next_offset, checkpoint, done, stores, entries, sha256
FROM vss_import_sessions
WHERE user_token = @user_token AND import_id = @import_id
FOR UPDATE;

-- name: PutImportSession :exec
-- PutImportSession records where an import sent in chunks stands, or its result.
INSERT INTO vss_import_sessions (user_token, import_id, next_offset, checkpoint, done, stores, entries, sha256, updated_at)
VALUES (@user_token, @import_id, @next_offset, @checkpoint, @done, @stores, @entries, @sha256, now())
ON CONFLICT (user_token, import_id) DO UPDATE
SET next_offset = excluded.next_offset, checkpoint = excluded.checkpoint, done = excluded.done,
    stores = excluded.stores, entries = excluded.entries, sha256 = excluded.sha256, updated_at = now();

-- name: DeleteImportSessions :exec
-- DeleteImportSessions forgets the session of an import, of one user or, with user_token
-- empty, of every user.
DELETE FROM vss_import_sessions
WHERE import_id = @import_id AND (@user_token::text = '' OR user_token = @user_token::text);

-- name: DeleteUserImports :exec
-- DeleteUserImports forgets the import records of a user whose data is deleted.
DELETE FROM vss_imports
WHERE user_token = @user_token;

-- name: DeleteUserImportSessions :exec
-- DeleteUserImportSessions forgets the import sessions of a user whose data is deleted.
DELETE FROM vss_import_sessions
WHERE user_token = @user_token;

-- name: StoreStats :one
-- StoreStats counts a store's rows (its global version included) and their bytes of
-- keys and values, as UserUsage does for a user.
SELECT count(*)::bigint AS keys,
       COALESCE(sum(octet_length(key) + COALESCE(octet_length(value), 0)), 0)::bigint AS bytes
FROM vss_db
WHERE user_token = @user_token AND store_id = @store_id;

-- name: LockStoreFeed :exec
-- LockStoreFeed locks a store's feed head, if it is followed, before DeleteStore deletes
-- its keys, as LockUserFeeds does for DeleteUser.
SELECT 1
FROM vss_feed_heads
WHERE user_token = @user_token AND store_id = @store_id
FOR UPDATE;

-- name: DeleteStoreObjects :execrows
-- DeleteStoreObjects deletes every row of a store, its global version included.
DELETE FROM vss_db
WHERE user_token = @user_token AND store_id = @store_id;

-- name: DeleteStoreChanges :exec
-- DeleteStoreChanges forgets the recorded changes of a store; its head stays, so every
-- cursor of it is now older than the feed and its devices list it again.
DELETE FROM vss_changes
WHERE user_token = @user_token AND store_id = @store_id;

-- name: ExpireStoreLeases :exec
-- ExpireStoreLeases ends every lease grant of a store; the rows stay, so that fencing
-- tokens keep growing.
UPDATE vss_leases
SET expires_at = least(expires_at, clock_timestamp())
WHERE user_token = @user_token AND store_id = @store_id;

-- name: DeleteStoreImport :exec
-- DeleteStoreImport forgets the import record of a deleted store.
DELETE FROM vss_imports
WHERE user_token = @user_token AND store_id = @store_id;

-- name: InsertImported :execrows
-- InsertImported creates a batch of imported entries with their versions as stored at
-- the source, in one statement. Each takes the next sort_order in the order of the
-- arrays (the dump's order), so the entries list as they did at the source.
WITH items AS MATERIALIZED (
    SELECT i.key, i.version, i.value,
           nextval((SELECT pg_get_serial_sequence('vss_db', 'sort_order'))::regclass) AS sort_order
    FROM (SELECT unnest(@keys::text[]) AS key, unnest(@versions::bigint[]) AS version,
                 unnest(@vals::bytea[]) AS value) i
)
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at, sort_order)
SELECT @user_token, @store_id, i.key, i.value, i.version, now(), now(), i.sort_order
FROM items i;

-- name: AddUsage :one
-- AddUsage adds an import's entries to the user's usage row, which LockUsage created
-- and locked in the same transaction, and returns the new usage.
UPDATE vss_user_usage
SET bytes = bytes + @bytes, keys = keys + @keys, updated_at = now()
WHERE user_token = @user_token
RETURNING bytes, keys;
