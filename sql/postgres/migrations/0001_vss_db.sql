-- 0001 creates the vss_db table with the reference VSS server's layout, or brings an
-- existing table written by the reference server up to that layout without losing or
-- reordering anything, so that an operator can point this server at the reference
-- server's database.
--
-- The migration runner applies this file once, in a transaction, under an advisory lock,
-- and records it in vss_schema_migrations. It never touches the reference server's own
-- bookkeeping (vss_db_version, vss_db_upgrades) nor its older index
-- idx_vss_db_created_at: both stay as the reference server left them, so the operator
-- can still go back to it.
--
-- sqlc reads the CREATE TABLE below as the schema; it ignores the DO block.

CREATE TABLE IF NOT EXISTS vss_db (
    user_token varchar(120) NOT NULL CHECK (user_token <> ''),
    store_id varchar(120) NOT NULL,
    key varchar(600) NOT NULL,
    value bytea,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    last_updated_at timestamptz,
    sort_order bigserial NOT NULL UNIQUE,
    PRIMARY KEY (user_token, store_id, key)
);

-- Upgrade a table created by an older reference server (the CREATE TABLE above did
-- nothing in that case). Every step looks at the catalog first, so on a table that is
-- already current this block changes nothing.
DO $$
BEGIN
    -- The first reference releases refused an empty store_id; the contract allows it.
    IF EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conrelid = 'vss_db'::regclass AND conname = 'vss_db_store_id_check'
    ) THEN
        ALTER TABLE vss_db DROP CONSTRAINT vss_db_store_id_check;
    END IF;

    -- created_at was nullable before the reference server filled it in.
    IF EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = 'vss_db'::regclass AND attname = 'created_at' AND NOT attnotnull
    ) THEN
        UPDATE vss_db SET created_at = COALESCE(last_updated_at, now()) WHERE created_at IS NULL;
        ALTER TABLE vss_db ALTER COLUMN created_at SET NOT NULL;
    END IF;

    -- Reference releases before the creation-ordered listing had no sort_order. Number
    -- the existing rows in creation order (created_at survives updates in the reference
    -- server and is renewed by a delete and re-create, exactly like sort_order), then
    -- let the sequence continue after them. The reference server listed by key in those
    -- releases, so no listing order existed to preserve.
    IF NOT EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = 'vss_db'::regclass AND attname = 'sort_order' AND NOT attisdropped
    ) THEN
        CREATE SEQUENCE vss_db_sort_order_seq AS bigint;
        ALTER TABLE vss_db ADD COLUMN sort_order bigint;
        UPDATE vss_db v SET sort_order = n.sort_order
        FROM (
            SELECT user_token, store_id, key,
                   row_number() OVER (ORDER BY created_at, last_updated_at, user_token, store_id, key) AS sort_order
            FROM vss_db
        ) n
        WHERE v.user_token = n.user_token AND v.store_id = n.store_id AND v.key = n.key;
        PERFORM setval('vss_db_sort_order_seq', COALESCE(max(sort_order), 0) + 1, false) FROM vss_db;
        ALTER SEQUENCE vss_db_sort_order_seq OWNED BY vss_db.sort_order;
        ALTER TABLE vss_db
            ALTER COLUMN sort_order SET DEFAULT nextval('vss_db_sort_order_seq'),
            ALTER COLUMN sort_order SET NOT NULL;
    END IF;

    -- sort_order is unique; the reference schema declares it so. Accept any existing
    -- unique single-column index on it rather than adding a second one.
    IF NOT EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indrelid = 'vss_db'::regclass
          AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
          AND i.indnatts = 1
          AND i.indkey[0] = (SELECT attnum FROM pg_attribute
                             WHERE attrelid = 'vss_db'::regclass AND attname = 'sort_order')
    ) THEN
        ALTER TABLE vss_db ADD CONSTRAINT vss_db_sort_order_key UNIQUE (sort_order);
    END IF;

    -- The listing index: (user_token, store_id, sort_order) with key and version
    -- included, so a page is read from the index alone. An existing index with the same
    -- key and included columns, whatever its name or scan direction, serves the same
    -- queries and is kept instead of being duplicated.
    IF NOT EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indrelid = 'vss_db'::regclass
          AND i.indpred IS NULL AND i.indexprs IS NULL
          AND i.indnkeyatts = 3 AND i.indnatts = 5
          AND ARRAY(
                SELECT a.attname::text
                FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE k.ord <= 3
                ORDER BY k.ord
              ) = ARRAY['user_token', 'store_id', 'sort_order']
          AND ARRAY(
                SELECT a.attname::text
                FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE k.ord > 3
                ORDER BY a.attname
              ) = ARRAY['key', 'version']
    ) THEN
        CREATE INDEX vss_db_list_idx
            ON vss_db (user_token, store_id, sort_order DESC) INCLUDE (key, version);
    END IF;
END
$$;
