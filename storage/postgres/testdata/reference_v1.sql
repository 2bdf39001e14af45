-- The schema of a database prepared by a later reference VSS server release that still
-- listed keys by key: the v0 layout plus its next migrations, which allowed an empty
-- store_id, made created_at NOT NULL and added idx_vss_db_created_at. Still no
-- sort_order.
CREATE TABLE vss_db_version (db_version INTEGER);
INSERT INTO vss_db_version VALUES(1);
CREATE TABLE vss_db_upgrades (upgrade_from INTEGER);
CREATE TABLE IF NOT EXISTS vss_db (
    user_token character varying(120) NOT NULL CHECK (user_token <> ''),
    store_id character varying(120) NOT NULL CHECK (store_id <> ''),
    key character varying(600) NOT NULL,
    value bytea NULL,
    version bigint NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE,
    last_updated_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (user_token, store_id, key)
);
ALTER TABLE vss_db DROP CONSTRAINT IF EXISTS vss_db_store_id_check;
UPDATE vss_db SET created_at = COALESCE(last_updated_at, NOW()) WHERE created_at IS NULL;
ALTER TABLE vss_db ALTER COLUMN created_at SET NOT NULL;
CREATE INDEX idx_vss_db_created_at ON vss_db (user_token, store_id, created_at, key);
INSERT INTO vss_db_upgrades VALUES(0);
UPDATE vss_db_version SET db_version=8;
