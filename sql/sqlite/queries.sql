-- name: GetObject :one
-- GetObject reads one entry with its value.
SELECT key, version, value
FROM vss_db
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id) AND key = sqlc.arg(key);

-- name: GetVersion :one
-- GetVersion reads the version of one entry without its value.
SELECT version
FROM vss_db
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id) AND key = sqlc.arg(key);

-- name: CreateObject :exec
-- CreateObject inserts a key at version 1; it fails with a UNIQUE constraint error if
-- the key exists.
INSERT INTO vss_db (user_token, store_id, key, value, version)
VALUES (sqlc.arg(user_token), sqlc.arg(store_id), sqlc.arg(key), sqlc.arg(value), 1);

-- name: UpdateObject :execrows
-- UpdateObject replaces the value of a key at the given version and bumps
-- the version; it affects no row when the key is missing or at another version. It
-- never increments the largest version, 2^63-1: SQLite would turn the overflowing sum
-- into a REAL, a version that no longer reads as an integer. (The service refuses such
-- a write before it reaches the store.)
UPDATE vss_db
SET value = sqlc.arg(value),
    version = version + 1,
    last_updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id) AND key = sqlc.arg(key)
  AND version = sqlc.arg(version) AND version < 9223372036854775807;

-- name: UpsertObject :exec
-- UpsertObject writes a key unconditionally at version 1. An existing row is updated in
-- place, keeping its sort_order (REPLACE would delete it and insert a new one).
INSERT INTO vss_db (user_token, store_id, key, value, version)
VALUES (sqlc.arg(user_token), sqlc.arg(store_id), sqlc.arg(key), sqlc.arg(value), 1)
ON CONFLICT (user_token, store_id, key) DO UPDATE
SET value = excluded.value,
    version = 1,
    last_updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now');

-- name: DeleteObject :execrows
-- DeleteObject removes a key whatever its version.
DELETE FROM vss_db
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id) AND key = sqlc.arg(key);

-- name: DeleteObjectVersion :execrows
-- DeleteObjectVersion removes a key only if it is at the given version.
DELETE FROM vss_db
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id) AND key = sqlc.arg(key)
  AND version = sqlc.arg(version);

-- name: ListKeyVersions :many
-- ListKeyVersions pages through a store's keys newest first. The prefix is compared
-- literally and case-sensitively with substr, not LIKE (whose '%' and '_' are wildcards
-- and which ignores ASCII case); substr and length both count characters.
SELECT key, version, sort_order
FROM vss_db
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id)
  AND sort_order < sqlc.arg(before)
  AND key <> sqlc.arg(excluded_key)
  AND substr(key, 1, length(CAST(sqlc.arg(prefix) AS TEXT))) = CAST(sqlc.arg(prefix) AS TEXT)
ORDER BY sort_order DESC
LIMIT sqlc.arg(page_size);

-- name: InsertChallenge :execrows
-- InsertChallenge records that the LNURL-auth challenge k1 was answered; it affects no
-- row when k1 was recorded before.
INSERT INTO vss_auth_challenges (k1, expires_at)
VALUES (sqlc.arg(k1), sqlc.arg(expires_at))
ON CONFLICT (k1) DO NOTHING;

-- name: DeleteExpiredChallenges :execrows
-- DeleteExpiredChallenges deletes up to cleanup_limit challenges that expired before
-- now (Unix milliseconds), except kept, oldest first.
DELETE FROM vss_auth_challenges
WHERE k1 IN (
    SELECT e.k1
    FROM vss_auth_challenges e
    WHERE e.expires_at < sqlc.arg(now) AND e.k1 <> sqlc.arg(kept)
    ORDER BY e.expires_at
    LIMIT sqlc.arg(cleanup_limit)
);

-- name: Secret :one
-- Secret stores secret under name unless a secret is stored there already, and returns
-- the stored one. The no-op DO UPDATE makes RETURNING yield the existing row.
INSERT INTO vss_auth_secrets (name, secret)
VALUES (sqlc.arg(name), sqlc.arg(secret))
ON CONFLICT (name) DO UPDATE SET secret = vss_auth_secrets.secret
RETURNING secret;

-- Per-user quotas. The write transaction of a Put keeps the user's vss_user_usage row
-- equal to the sums over the user's rows; see Store.put. Lengths are in bytes: keys are
-- TEXT, so they are measured as BLOBs.

-- name: GetUsage :one
-- GetUsage reads the usage row of a user.
SELECT bytes, keys
FROM vss_user_usage
WHERE user_token = sqlc.arg(user_token);

-- name: CountUsage :one
-- CountUsage sums the rows of a user, to create the user's usage row.
SELECT CAST(COALESCE(sum(length(CAST(key AS BLOB)) + COALESCE(length(value), 0)), 0) AS INTEGER) AS bytes,
       CAST(count(*) AS INTEGER) AS keys
FROM vss_db
WHERE user_token = sqlc.arg(user_token);

-- name: SetUsage :exec
-- SetUsage stores the usage of a user.
INSERT INTO vss_user_usage (user_token, bytes, keys)
VALUES (sqlc.arg(user_token), sqlc.arg(bytes), sqlc.arg(keys))
ON CONFLICT (user_token) DO UPDATE
SET bytes = excluded.bytes, keys = excluded.keys;

-- name: AdjustUsage :exec
-- AdjustUsage adds to the usage row of a user, if there is one.
UPDATE vss_user_usage
SET bytes = bytes + sqlc.arg(bytes), keys = keys + sqlc.arg(keys)
WHERE user_token = sqlc.arg(user_token);

-- name: GetEntrySize :one
-- GetEntrySize reads the size an entry counts for: its key and value lengths in bytes.
SELECT CAST(length(CAST(key AS BLOB)) + COALESCE(length(value), 0) AS INTEGER) AS size
FROM vss_db
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id) AND key = sqlc.arg(key);

-- name: ClearUsage :exec
-- ClearUsage forgets every user's usage; each is recounted at the user's next write.
DELETE FROM vss_user_usage;

-- name: UserUsage :many
-- UserUsage sums the rows of every user, or of one user when user_token is not empty.
SELECT user_token,
       CAST(COALESCE(sum(length(CAST(key AS BLOB)) + COALESCE(length(value), 0)), 0) AS INTEGER) AS bytes,
       CAST(count(*) AS INTEGER) AS keys,
       CAST(count(DISTINCT store_id) AS INTEGER) AS stores
FROM vss_db
WHERE CAST(sqlc.arg(user_token) AS TEXT) = '' OR user_token = CAST(sqlc.arg(user_token) AS TEXT)
GROUP BY user_token
ORDER BY user_token;

-- name: DeleteUserObjects :execrows
-- DeleteUserObjects deletes every entry of one user, in all stores.
DELETE FROM vss_db
WHERE user_token = sqlc.arg(user_token);

-- name: DeleteUserUsage :exec
-- DeleteUserUsage forgets the usage row of one user.
DELETE FROM vss_user_usage
WHERE user_token = sqlc.arg(user_token);

-- The change feed and leases (migration 0005).

-- name: SetWriter :exec
-- SetWriter names the device of the write about to be applied, for the triggers that
-- record its changes. Every write runs it first in its transaction.
UPDATE vss_feed_writer SET device_id = sqlc.arg(device_id) WHERE id = 1;

-- name: LeaseGrant :one
-- LeaseGrant reads the token and expiry of a lease's latest grant.
SELECT token, expires_at
FROM vss_leases
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id) AND name = sqlc.arg(name);

-- name: FollowStore :exec
-- FollowStore starts recording a store's changes if nobody followed it before: its feed
-- starts at 0 if the store holds no key, else at 1, so that a reader that has nothing
-- (cursor 0) is told to list the store. It runs on the one write connection, between
-- two writes.
INSERT INTO vss_feed_heads (user_token, store_id, seq)
SELECT sqlc.arg(user_token), sqlc.arg(store_id),
       CASE WHEN EXISTS (SELECT 1 FROM vss_db d
                         WHERE d.user_token = sqlc.arg(user_token) AND d.store_id = sqlc.arg(store_id))
            THEN 1 ELSE 0 END
WHERE true
ON CONFLICT (user_token, store_id) DO NOTHING;

-- name: FeedState :one
-- FeedState reads a store's feed head (-1 when nobody follows the store) and its oldest
-- retained change (0 when none).
SELECT CAST(COALESCE((SELECT h.seq FROM vss_feed_heads h
                      WHERE h.user_token = sqlc.arg(user_token) AND h.store_id = sqlc.arg(store_id)), -1) AS INTEGER) AS head,
       CAST(COALESCE((SELECT min(c.seq) FROM vss_changes c
                      WHERE c.user_token = sqlc.arg(user_token) AND c.store_id = sqlc.arg(store_id)), 0) AS INTEGER) AS oldest;

-- name: ListChanges :many
-- ListChanges reads up to page_limit changes of a store after the sequence number after,
-- each with the size of the key's value when the key still holds that version and the
-- change is not a delete (value_size -1 otherwise). The store reads the values it
-- returns with ChangeValue, in the same read transaction.
SELECT c.seq, c.key, c.version, c.deleted, c.device_id, c.changed_at,
       CAST(COALESCE((SELECT COALESCE(length(v.value), 0) FROM vss_db v
                      WHERE c.deleted = 0 AND v.user_token = c.user_token AND v.store_id = c.store_id
                        AND v.key = c.key AND v.version = c.version), -1) AS INTEGER) AS value_size
FROM vss_changes c
WHERE c.user_token = sqlc.arg(user_token) AND c.store_id = sqlc.arg(store_id) AND c.seq > sqlc.arg(after)
ORDER BY c.seq
LIMIT sqlc.arg(page_limit);

-- name: ChangeValue :one
-- ChangeValue reads the value of a key at a version.
SELECT value
FROM vss_db
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id) AND key = sqlc.arg(key)
  AND version = sqlc.arg(version);

-- name: PruneChanges :execrows
-- PruneChanges deletes, in each store, every change up to the newest one older than
-- cutoff (Unix milliseconds), so that what remains of a store's feed is a suffix of it.
DELETE FROM vss_changes
WHERE seq <= (
    SELECT max(o.seq)
    FROM vss_changes o
    WHERE o.user_token = vss_changes.user_token AND o.store_id = vss_changes.store_id
      AND o.changed_at < sqlc.arg(cutoff)
);

-- name: PutLease :exec
-- PutLease records a new grant of a lease. AcquireLease runs it after LeaseGrant, in one
-- write transaction, once it found no grant in force; token is the previous one plus 1.
INSERT INTO vss_leases (user_token, store_id, name, holder, token, expires_at)
VALUES (sqlc.arg(user_token), sqlc.arg(store_id), sqlc.arg(name), sqlc.arg(holder), sqlc.arg(token), sqlc.arg(expires_at))
ON CONFLICT (user_token, store_id, name) DO UPDATE
SET holder = excluded.holder, token = excluded.token, expires_at = excluded.expires_at;

-- name: RenewLease :one
-- RenewLease extends the grant with token if it is in force at now.
UPDATE vss_leases
SET expires_at = sqlc.arg(expires_at)
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id) AND name = sqlc.arg(name)
  AND token = sqlc.arg(token) AND expires_at > sqlc.arg(now)
RETURNING holder, token, expires_at;

-- name: ReleaseLease :execrows
-- ReleaseLease ends the grant with token if it is in force at now.
UPDATE vss_leases
SET expires_at = sqlc.arg(now)
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id) AND name = sqlc.arg(name)
  AND token = sqlc.arg(token) AND expires_at > sqlc.arg(now);

-- name: GetLease :one
-- GetLease reads a lease's latest grant.
SELECT holder, token, expires_at
FROM vss_leases
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id) AND name = sqlc.arg(name);

-- name: DeleteUserChanges :exec
-- DeleteUserChanges forgets every recorded change of a user; the heads stay (see the
-- PostgreSQL query of the same name).
DELETE FROM vss_changes
WHERE user_token = sqlc.arg(user_token);

-- name: ExpireUserLeases :exec
-- ExpireUserLeases ends every lease grant of a user at now (Unix milliseconds); the rows
-- stay, so that fencing tokens keep growing.
UPDATE vss_leases
SET expires_at = min(expires_at, sqlc.arg(now))
WHERE user_token = sqlc.arg(user_token);

-- name: ExportStoreIDs :many
-- ExportStoreIDs lists the store ids of a user in byte order (the dump's store order;
-- SQLite compares TEXT with BINARY), each once.
SELECT DISTINCT store_id
FROM vss_db
WHERE user_token = sqlc.arg(user_token)
ORDER BY store_id;

-- name: ExportSizes :many
-- ExportSizes reads the sort orders and value sizes of up to max_rows entries of a store
-- in creation order after the sort order of the previous page, without the values
-- (length of a BLOB does not load it), so that an export can end its next page at a
-- byte budget (sqlc cannot type the window query that would do it in one statement).
-- The global version row is included.
SELECT sort_order, CAST(COALESCE(length(value), 0) AS INTEGER) AS size
FROM vss_db
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id)
  AND sort_order > sqlc.arg(after)
ORDER BY sort_order
LIMIT sqlc.arg(max_rows);

-- name: ExportEntries :many
-- ExportEntries reads a page of a store's entries with their values in creation order,
-- oldest first (the dump's entry order): those after the sort order of the previous
-- page, up to and including the last sort order of the page. The global version row is
-- included.
SELECT key, version, value, sort_order
FROM vss_db
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id)
  AND sort_order > sqlc.arg(after) AND sort_order <= sqlc.arg(last)
ORDER BY sort_order;

-- name: GetImport :one
-- GetImport reads the import record of a store.
SELECT import_id, entries, done, sha256
FROM vss_imports
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id);

-- name: StoreHasRows :one
-- StoreHasRows tells whether a store holds any row, its global version included.
SELECT EXISTS (
    SELECT 1 FROM vss_db WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id)
) AS has_rows;

-- name: PutImport :exec
-- PutImport creates or updates the import record of a store.
INSERT INTO vss_imports (user_token, store_id, import_id, entries, done, sha256)
VALUES (sqlc.arg(user_token), sqlc.arg(store_id), sqlc.arg(import_id), sqlc.arg(entries), sqlc.arg(done), sqlc.arg(sha256))
ON CONFLICT (user_token, store_id) DO UPDATE
SET import_id = excluded.import_id, entries = excluded.entries, done = excluded.done,
    sha256 = excluded.sha256;

-- name: DeleteImport :exec
-- DeleteImport forgets the records of an import, of one user or, with user_token empty,
-- of every user (a database import).
DELETE FROM vss_imports
WHERE import_id = sqlc.arg(import_id)
  AND (CAST(sqlc.arg(user_token) AS TEXT) = '' OR user_token = CAST(sqlc.arg(user_token) AS TEXT));

-- name: ImportedStores :many
-- ImportedStores lists the stores an import has records of, of one user or, with
-- user_token empty, of every user.
SELECT user_token, store_id
FROM vss_imports
WHERE import_id = sqlc.arg(import_id)
  AND (CAST(sqlc.arg(user_token) AS TEXT) = '' OR user_token = CAST(sqlc.arg(user_token) AS TEXT))
ORDER BY user_token, store_id;

-- name: GetImportSession :one
-- GetImportSession reads where an import sent in chunks stands.
SELECT next_offset, checkpoint, done, stores, entries, sha256
FROM vss_import_sessions
WHERE user_token = sqlc.arg(user_token) AND import_id = sqlc.arg(import_id);

-- name: PutImportSession :exec
-- PutImportSession records where an import sent in chunks stands, or its result
-- (updated_at in Unix milliseconds).
INSERT INTO vss_import_sessions (user_token, import_id, next_offset, checkpoint, done, stores, entries, sha256, updated_at)
VALUES (sqlc.arg(user_token), sqlc.arg(import_id), sqlc.arg(next_offset), sqlc.arg(checkpoint), sqlc.arg(done),
        sqlc.arg(stores), sqlc.arg(entries), sqlc.arg(sha256), sqlc.arg(now))
ON CONFLICT (user_token, import_id) DO UPDATE
SET next_offset = excluded.next_offset, checkpoint = excluded.checkpoint, done = excluded.done,
    stores = excluded.stores, entries = excluded.entries, sha256 = excluded.sha256, updated_at = excluded.updated_at;

-- name: DeleteImportSessions :exec
-- DeleteImportSessions forgets the session of an import, of one user or, with
-- user_token empty, of every user.
DELETE FROM vss_import_sessions
WHERE import_id = sqlc.arg(import_id)
  AND (CAST(sqlc.arg(user_token) AS TEXT) = '' OR user_token = CAST(sqlc.arg(user_token) AS TEXT));

-- name: DeleteUserImports :exec
-- DeleteUserImports forgets the import records of a user whose data is deleted.
DELETE FROM vss_imports
WHERE user_token = sqlc.arg(user_token);

-- name: DeleteUserImportSessions :exec
-- DeleteUserImportSessions forgets the import sessions of a user whose data is deleted.
DELETE FROM vss_import_sessions
WHERE user_token = sqlc.arg(user_token);

-- name: StoreStats :one
-- StoreStats counts a store's rows (its global version included) and their bytes of
-- keys and values, as UserUsage does for a user.
SELECT CAST(count(*) AS INTEGER) AS keys,
       CAST(COALESCE(sum(length(CAST(key AS BLOB)) + COALESCE(length(value), 0)), 0) AS INTEGER) AS bytes
FROM vss_db
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id);

-- name: DeleteStoreObjects :execrows
-- DeleteStoreObjects deletes every row of a store, its global version included.
DELETE FROM vss_db
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id);

-- name: DeleteStoreChanges :exec
-- DeleteStoreChanges forgets the recorded changes of a store; its head stays (see the
-- PostgreSQL query of the same name).
DELETE FROM vss_changes
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id);

-- name: ExpireStoreLeases :exec
-- ExpireStoreLeases ends every lease grant of a store at now (Unix milliseconds); the
-- rows stay, so that fencing tokens keep growing.
UPDATE vss_leases
SET expires_at = min(expires_at, sqlc.arg(now))
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id);

-- name: DeleteStoreImport :exec
-- DeleteStoreImport forgets the import record of a deleted store.
DELETE FROM vss_imports
WHERE user_token = sqlc.arg(user_token) AND store_id = sqlc.arg(store_id);

-- name: InsertImported :exec
-- InsertImported creates an imported entry with its version as stored at the source;
-- it takes the next sort_order, so entries inserted in dump order list as they did.
INSERT INTO vss_db (user_token, store_id, key, value, version)
VALUES (sqlc.arg(user_token), sqlc.arg(store_id), sqlc.arg(key), sqlc.arg(value), sqlc.arg(version));
