-- 0002 creates the state of the built-in LNURL-auth issuer (storage.AuthStore), as in
-- the PostgreSQL store.
--
-- vss_auth_challenges holds the LNURL-auth challenges (k1) that were answered, each
-- until it expires, so that a k1 is accepted once. expires_at is Unix time in
-- milliseconds; a row may be deleted once it has passed.
CREATE TABLE vss_auth_challenges (
    k1         BLOB    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX vss_auth_challenges_expires_at ON vss_auth_challenges (expires_at);

-- vss_auth_secrets holds the issuer's long-lived secrets by name (its JWT signing key,
-- the key of its challenge MACs). A secret is written once and never changed.
CREATE TABLE vss_auth_secrets (
    name       TEXT NOT NULL PRIMARY KEY,
    secret     BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
