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
-- any version condition fails; otherwise it writes everything and returns how many rows
-- it wrote, one per item.
--
-- Why this is correct under concurrency, at READ COMMITTED. All sub-statements of one
-- statement share one snapshot, and none sees the others' writes. Three facts carry the
-- argument:
--
--  1. locked takes a row lock on every existing row the request names, in key order (the
--     lock is taken above the sort, so two requests lock their common rows in the same
--     order and cannot deadlock on them). If such a row was changed by a transaction that
--     committed after our snapshot, FOR UPDATE waits for it, then locks and returns the
--     newest version; if it was deleted, the row is left out. So locked holds the current
--     version of every named row that exists, and nobody can change those rows until we
--     commit.
--  2. checked compares every item with locked: no locked row may fail its condition, and
--     every item that needs its row (a put at version N > 0, a delete) must have one. It
--     reads locked to the end when the answer is yes, so every lock is held before any
--     write starts; every writer below runs only if checked.ok is true, so a failed
--     condition writes nothing.
--  3. updated and deleted reach their rows through the snapshot; when the snapshot's
--     version is out of date PostgreSQL follows the update chain to the newest version
--     (EvalPlanQual), which is the one locked holds: each write applies to exactly the
--     row version that was checked. They only touch rows present in locked.
--
-- A row our snapshot cannot see (created by a transaction that committed after it or
-- that is still in progress) is not in locked. A version-0 item is a plain INSERT in created:
-- it waits for the other transaction and raises unique_violation (23505) if that one
-- committed, which aborts the whole statement, writes nothing, and reports a conflict.
-- A version -1 item is an upsert in upserted: it overwrites the row it locked, or a row
-- created concurrently (waiting for its transaction), or creates the key. A
-- put at version N > 0 or a delete whose row is not in locked fails the check: the right
-- answer for a missing key, and a safe one (nothing written, retry) for a key deleted
-- and re-created concurrently. Inserts run in key order within created and within
-- upserted; two requests that cross a create and an upsert of the same two new keys can
-- still deadlock, and PostgreSQL then aborts one of them (40P01), which the store
-- reports as a conflict: nothing of it was written. An update or upsert keeps the
-- row's sort_order, so the key keeps its place in listings; a delete followed by a
-- create gives the new row the next sort_order.
--
-- Every read of vss_db below names its rows by the whole primary key, the keys as an
-- array (key = ANY(...)), so the statement costs O(items · log rows) whatever the
-- planner estimates. (Joining on the key alone is not enough: a generic plan, which
-- cannot know the arrays' lengths, may scan every row of the store through the key
-- prefix and join afterwards, making each write cost O(keys in the store).)
WITH items AS MATERIALIZED (
    -- Set-returning functions in one select list advance in step: row i pairs the
    -- i-th element of each array.
    SELECT unnest(@put_keys::text[]) AS key,
           unnest(@put_versions::bigint[]) AS version,
           unnest(@put_values::bytea[]) AS value,
           false AS is_delete
    UNION ALL
    SELECT unnest(@delete_keys::text[]) AS key,
           unnest(@delete_versions::bigint[]) AS version,
           NULL::bytea AS value,
           true AS is_delete
),
locked AS MATERIALIZED (
    SELECT i.key, i.version AS expected, i.value, i.is_delete, v.version AS current
    FROM (SELECT * FROM items ORDER BY key) i
    CROSS JOIN LATERAL (
        SELECT r.version
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
created AS (
    INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
    SELECT @user_token, @store_id, i.key, i.value, 1, now(), now()
    FROM items i
    WHERE NOT i.is_delete AND i.version = 0 AND (SELECT c.ok FROM checked c)
    ORDER BY i.key
    RETURNING 1
),
upserted AS (
    INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
    SELECT @user_token, @store_id, i.key, i.value, 1, now(), now()
    FROM items i
    WHERE NOT i.is_delete AND i.version = -1 AND (SELECT c.ok FROM checked c)
    ORDER BY i.key
    ON CONFLICT (user_token, store_id, key) DO UPDATE
    SET value = excluded.value, version = 1, last_updated_at = excluded.last_updated_at
    RETURNING 1
),
updated AS (
    -- Every row here exists and is locked by this statement, so the insert always
    -- meets its conflict and updates: an update that finds its row through the primary
    -- key index whatever the planner estimates.
    INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
    SELECT @user_token, @store_id, l.key, l.value, l.current + 1, now(), now()
    FROM locked l
    WHERE NOT l.is_delete AND l.expected > 0 AND (SELECT c.ok FROM checked c)
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
      AND (SELECT c.ok FROM checked c)
    RETURNING 1
)
SELECT
    checked.ok::boolean AS ok,
    ((SELECT count(*) FROM created)
     + (SELECT count(*) FROM upserted)
     + (SELECT count(*) FROM updated)
     + (SELECT count(*) FROM deleted))::bigint AS written
FROM checked;

-- name: UpsertObjects :one
-- UpsertObjects is PutObjects for a request whose items are all puts at version -1 (every
-- write LDK makes): nothing can fail a condition, so it is a plain upsert of every item,
-- in key order (so that two such requests lock their common rows in the same order),
-- storing version 1 and keeping an existing row's sort_order. It costs PostgreSQL a
-- fraction of the general statement. It returns how many rows it wrote.
WITH written AS (
    INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
    SELECT @user_token, @store_id, i.key, i.value, 1, now(), now()
    FROM (SELECT unnest(@keys::text[]) AS key, unnest(@vals::bytea[]) AS value) i
    ORDER BY i.key
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
-- PutObjectsQuota is PutObjects (see there for why it is atomic and correct under
-- concurrency) with the user's quota: it runs after LockUsage in the same transaction.
-- locked also reads the size of every existing row the request names; delta is what
-- the request changes (bytes: the new keys and values minus the rows they replace or
-- delete; keys: the puts of keys that do not exist minus the deletes), and allowed
-- checks it against the limits, counting only the amounts the request raises. Nothing
-- is written unless both the version conditions and the quota hold; the usage row is
-- updated by the same statement. bytes_ok and keys_ok tell which limit failed.
WITH items AS MATERIALIZED (
    SELECT unnest(@put_keys::text[]) AS key,
           unnest(@put_versions::bigint[]) AS version,
           unnest(@put_values::bytea[]) AS value,
           false AS is_delete
    UNION ALL
    SELECT unnest(@delete_keys::text[]) AS key,
           unnest(@delete_versions::bigint[]) AS version,
           NULL::bytea AS value,
           true AS is_delete
),
locked AS MATERIALIZED (
    SELECT i.key, i.version AS expected, i.value, i.is_delete, v.version AS current, v.current_size
    FROM (SELECT * FROM items ORDER BY key) i
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
    INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
    SELECT @user_token, @store_id, i.key, i.value, 1, now(), now()
    FROM items i
    WHERE NOT i.is_delete AND i.version = 0 AND (SELECT p.write FROM proceed p)
    ORDER BY i.key
    RETURNING 1
),
upserted AS (
    INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
    SELECT @user_token, @store_id, i.key, i.value, 1, now(), now()
    FROM items i
    WHERE NOT i.is_delete AND i.version = -1 AND (SELECT p.write FROM proceed p)
    ORDER BY i.key
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
