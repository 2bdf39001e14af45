-- Requests as the reference VSS server writes them, one transaction per PutObjects
-- request with one statement per item: a version-0 item is an INSERT ... ON CONFLICT DO
-- NOTHING at version 1, a version-N item an UPDATE ... WHERE version = N to N+1, a
-- version -1 item an upsert that sets version 1 and keeps created_at, a delete a DELETE;
-- the global version is an item under the key global_version with an empty value. Every
-- item gets its own timestamp (the reference server reads the clock per item). The
-- expected state is in reference_test.go.

-- r1: alice/wallet creates k1, global version 0 -> 1.
BEGIN;
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
VALUES ('alice', 'wallet', 'k1', 'k1-a', 1, '2024-03-01 10:00:00.000001+00', '2024-03-01 10:00:00.000001+00') ON CONFLICT DO NOTHING;
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
VALUES ('alice', 'wallet', 'global_version', '', 1, '2024-03-01 10:00:00.000002+00', '2024-03-01 10:00:00.000002+00') ON CONFLICT DO NOTHING;
COMMIT;

-- r2: bob/wallet creates b1 and b2.
BEGIN;
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
VALUES ('bob', 'wallet', 'b1', 'b1-a', 1, '2024-03-01 10:01:00.000001+00', '2024-03-01 10:01:00.000001+00') ON CONFLICT DO NOTHING;
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
VALUES ('bob', 'wallet', 'b2', 'b2-a', 1, '2024-03-01 10:01:00.000002+00', '2024-03-01 10:01:00.000002+00') ON CONFLICT DO NOTHING;
COMMIT;

-- r3: alice/wallet creates k2 and k3, global version 1 -> 2.
BEGIN;
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
VALUES ('alice', 'wallet', 'k2', 'k2-a', 1, '2024-03-01 10:02:00.000001+00', '2024-03-01 10:02:00.000001+00') ON CONFLICT DO NOTHING;
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
VALUES ('alice', 'wallet', 'k3', 'k3-a', 1, '2024-03-01 10:02:00.000002+00', '2024-03-01 10:02:00.000002+00') ON CONFLICT DO NOTHING;
UPDATE vss_db SET value = '', version = 2, last_updated_at = '2024-03-01 10:02:00.000003+00'
WHERE user_token = 'alice' AND store_id = 'wallet' AND key = 'global_version' AND version = 1;
COMMIT;

-- r4: alice/backup creates x1.
BEGIN;
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
VALUES ('alice', 'backup', 'x1', 'x1-a', 1, '2024-03-01 10:03:00.000001+00', '2024-03-01 10:03:00.000001+00') ON CONFLICT DO NOTHING;
COMMIT;

-- r5: alice/wallet updates k2 1 -> 2, global version 2 -> 3.
BEGIN;
UPDATE vss_db SET value = 'k2-b', version = 2, last_updated_at = '2024-03-01 10:04:00.000001+00'
WHERE user_token = 'alice' AND store_id = 'wallet' AND key = 'k2' AND version = 1;
UPDATE vss_db SET value = '', version = 3, last_updated_at = '2024-03-01 10:04:00.000002+00'
WHERE user_token = 'alice' AND store_id = 'wallet' AND key = 'global_version' AND version = 2;
COMMIT;

-- r6: alice/wallet deletes k1 at version 1, global version 3 -> 4.
BEGIN;
UPDATE vss_db SET value = '', version = 4, last_updated_at = '2024-03-01 10:05:00.000001+00'
WHERE user_token = 'alice' AND store_id = 'wallet' AND key = 'global_version' AND version = 3;
DELETE FROM vss_db WHERE user_token = 'alice' AND store_id = 'wallet' AND key = 'k1' AND version = 1;
COMMIT;

-- r7: bob/wallet overwrites b1 unconditionally (-1) and updates b2 1 -> 2.
BEGIN;
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
VALUES ('bob', 'wallet', 'b1', 'b1-b', 1, '2024-03-01 10:06:00.000001+00', '2024-03-01 10:06:00.000001+00')
ON CONFLICT (user_token, store_id, key) DO UPDATE
SET value = EXCLUDED.value, version = 1, last_updated_at = EXCLUDED.last_updated_at;
UPDATE vss_db SET value = 'b2-b', version = 2, last_updated_at = '2024-03-01 10:06:00.000002+00'
WHERE user_token = 'bob' AND store_id = 'wallet' AND key = 'b2' AND version = 1;
COMMIT;

-- r8: alice/wallet creates k4.
BEGIN;
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
VALUES ('alice', 'wallet', 'k4', 'k4-a', 1, '2024-03-01 10:07:00.000001+00', '2024-03-01 10:07:00.000001+00') ON CONFLICT DO NOTHING;
COMMIT;

-- r9: alice/wallet re-creates k1, global version 4 -> 5.
BEGIN;
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
VALUES ('alice', 'wallet', 'k1', 'k1-b', 1, '2024-03-01 10:08:00.000001+00', '2024-03-01 10:08:00.000001+00') ON CONFLICT DO NOTHING;
UPDATE vss_db SET value = '', version = 5, last_updated_at = '2024-03-01 10:08:00.000002+00'
WHERE user_token = 'alice' AND store_id = 'wallet' AND key = 'global_version' AND version = 4;
COMMIT;

-- r10, r11: alice/wallet updates k3 1 -> 2, then 2 -> 3.
BEGIN;
UPDATE vss_db SET value = 'k3-b', version = 2, last_updated_at = '2024-03-01 10:09:00.000001+00'
WHERE user_token = 'alice' AND store_id = 'wallet' AND key = 'k3' AND version = 1;
COMMIT;
BEGIN;
UPDATE vss_db SET value = 'k3-c', version = 3, last_updated_at = '2024-03-01 10:10:00.000001+00'
WHERE user_token = 'alice' AND store_id = 'wallet' AND key = 'k3' AND version = 2;
COMMIT;

-- r12: alice/backup creates x3 then x2 in one request.
BEGIN;
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
VALUES ('alice', 'backup', 'x3', 'x3-a', 1, '2024-03-01 10:11:00.000001+00', '2024-03-01 10:11:00.000001+00') ON CONFLICT DO NOTHING;
INSERT INTO vss_db (user_token, store_id, key, value, version, created_at, last_updated_at)
VALUES ('alice', 'backup', 'x2', 'x2-a', 1, '2024-03-01 10:11:00.000002+00', '2024-03-01 10:11:00.000002+00') ON CONFLICT DO NOTHING;
COMMIT;
