-- The schema of a database prepared by a current reference VSS server, as the contract
-- describes it: vss_db with sort_order bigserial UNIQUE and the listing index on
-- (user_token, store_id, sort_order DESC) INCLUDE (key, version), under the reference
-- server's own index name, plus its bookkeeping tables.
CREATE TABLE vss_db_version (db_version INTEGER);
INSERT INTO vss_db_version VALUES(1);
CREATE TABLE vss_db_upgrades (upgrade_from INTEGER);
CREATE TABLE IF NOT EXISTS vss_db (
    user_token character varying(120) NOT NULL CHECK (user_token <> ''),
    store_id character varying(120) NOT NULL,
    key character varying(600) NOT NULL,
    value bytea NULL,
    version bigint NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    last_updated_at TIMESTAMP WITH TIME ZONE,
    sort_order BIGSERIAL UNIQUE,
    PRIMARY KEY (user_token, store_id, key)
);
CREATE INDEX idx_vss_db_sort_order ON vss_db (user_token, store_id, sort_order DESC) INCLUDE (key, version);
INSERT INTO vss_db_upgrades VALUES(0);
UPDATE vss_db_version SET db_version=10;
