-- The schema of a database prepared by the first releases of the reference VSS server
-- (lightningdevkit/vss-server), statement for statement as its migration list ran them:
-- its bookkeeping tables, and vss_db with a non-empty store_id, a nullable created_at,
-- no sort_order and no index besides the primary key.
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
INSERT INTO vss_db_upgrades VALUES(0);
UPDATE vss_db_version SET db_version=4;
