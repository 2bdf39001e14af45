-- 0002 creates the state of the built-in LNURL-auth issuer (storage.AuthStore), which
-- every server instance on the database shares. The reference server has nothing of the
-- kind, and vss_db is left as it is.
--
-- vss_auth_challenges holds the LNURL-auth challenges (k1) that were answered, each
-- until it expires, so that a k1 is accepted once across all instances. A row may be
-- deleted once expires_at has passed: the issuer refuses an expired k1 on its own. The
-- index on expires_at lets each use delete a few expired rows cheaply.
CREATE TABLE vss_auth_challenges (
    k1 bytea PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX vss_auth_challenges_expires_at_idx ON vss_auth_challenges (expires_at);

-- vss_auth_secrets holds the issuer's long-lived secrets by name (its JWT signing key,
-- the key of its challenge MACs). A secret is written once and never changed, so every
-- instance, and every restart, uses the same one.
CREATE TABLE vss_auth_secrets (
    name text PRIMARY KEY,
    secret bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
