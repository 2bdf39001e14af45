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
-- Every join below pairs a CTE with vss_db through its primary key, so the statement
-- costs O(items · log rows), never O(items²).
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
    FROM items i
    JOIN vss_db v ON v.user_token = @user_token AND v.store_id = @store_id AND v.key = i.key
    ORDER BY i.key
    FOR UPDATE OF v
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
    UPDATE vss_db v
    SET value = l.value, version = l.current + 1, last_updated_at = now()
    FROM locked l
    WHERE v.user_token = @user_token AND v.store_id = @store_id AND v.key = l.key
      AND NOT l.is_delete AND l.expected > 0
      AND (SELECT c.ok FROM checked c)
    RETURNING 1
),
deleted AS (
    DELETE FROM vss_db v
    USING locked l
    WHERE v.user_token = @user_token AND v.store_id = @store_id AND v.key = l.key
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
