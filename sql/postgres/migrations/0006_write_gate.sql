-- 0006 moves the change feed's work at the start of a write into the write's own
-- statement. vss_begin_write does for one request what vss_begin_batch (0005) does for a
-- whole transaction: every statement that writes vss_db (PutObjects, UpsertObjects,
-- PutObjectsQuota, DeleteObject, DeleteObjectQuota in queries.sql) calls it once, as an
-- uncorrelated subquery in the condition of the rows it writes, which PostgreSQL
-- evaluates once, before the statement reads or locks any row. A write to a store nobody
-- follows then costs one function call inside a statement it runs anyway, instead of a
-- statement of its own per transaction.
--
-- vss_begin_write(user, store id, hinted)
--   * takes the store's advisory lock shared, until the transaction ends (see
--     vss_begin_batch: a write and the first follow of its store exclude each other);
--   * locks the store's feed head row if the store is followed, so that its changes are
--     numbered in commit order. The one lock order of writes is now, per request: the
--     lease row it is fenced by (vss_begin_request, FOR SHARE), the user's usage row (with
--     quotas on, LockUsage), the store's head row, the keys in key order; requests of a
--     transaction in (user, store id) order;
--   * tells the trigger whether to record the request's changes (the setting vss.feed,
--     for the rows the statement writes next);
--   * raises VS428 if hinted, the server's belief that the store is followed, is wrong,
--     with [[user, store id, followed]] in the detail, as vss_begin_batch does.
-- It returns true, so that it can stand in a condition.
--
-- vss_begin_batch stays for servers of the previous release that share the database
-- during an upgrade.
CREATE FUNCTION vss_begin_write(p_user text, p_store text, p_hinted boolean) RETURNS boolean
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    followed boolean;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1448301361, hashtext(p_user || '/' || p_store));
    PERFORM 1 FROM vss_feed_heads
    WHERE user_token = p_user AND store_id = p_store
    FOR NO KEY UPDATE;
    followed := FOUND;
    IF followed <> p_hinted THEN
        RAISE EXCEPTION 'the change feed state of a store changed' USING ERRCODE = 'VS428',
            DETAIL = jsonb_build_array(jsonb_build_array(p_user, p_store, followed))::text;
    END IF;
    PERFORM set_config('vss.feed', CASE WHEN followed THEN '1' ELSE '0' END, true);
    RETURN true;
END
$$;
