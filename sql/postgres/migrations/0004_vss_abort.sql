-- 0004 creates vss_abort, which PutObjects calls to abandon a statement that has already
-- inserted rows (see PutObjects in queries.sql): plain SQL has no way to raise an error
-- with a code of its choice. vss_db is left as it is; the reference server never calls
-- the function.
--
-- vss_abort(code, message) raises an error with SQLSTATE code and message; its return
-- type only lets it stand in an expression.
CREATE OR REPLACE FUNCTION vss_abort(code text, message text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
END
$$;
