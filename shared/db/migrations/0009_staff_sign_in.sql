-- Staff sign in with their email address: a password (an argon2id hash, the password itself is
-- never stored or carried) or a one-time link by email, and get a server-side session. Only
-- hashes of session and link tokens are kept, so a copy of this database opens nothing.
ALTER TABLE staff ADD COLUMN password_hash text;
CREATE INDEX staff_email ON staff (lower(email)) WHERE active;

CREATE TABLE staff_sessions (
    session_sha256 text        PRIMARY KEY,
    shop_id        text        NOT NULL,
    staff_id       text        NOT NULL,
    created_at     timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    -- Idle expiry, moved on with use but never past the absolute lifetime.
    expires_at     timestamptz NOT NULL,
    FOREIGN KEY (shop_id, staff_id) REFERENCES staff ON DELETE CASCADE
);
CREATE INDEX staff_sessions_staff ON staff_sessions (shop_id, staff_id);

CREATE TABLE sign_in_links (
    link_sha256 text        PRIMARY KEY,
    shop_id     text        NOT NULL,
    staff_id    text        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    FOREIGN KEY (shop_id, staff_id) REFERENCES staff ON DELETE CASCADE
);

-- Attempts to sign in (passwords tried, links asked for), to slow down guessing: counted per
-- email address and per client address over a short window, and pruned past it.
CREATE TABLE sign_in_attempts (
    email_key text        NOT NULL,
    client    text        NOT NULL,
    at        timestamptz NOT NULL,
    succeeded boolean     NOT NULL
);
CREATE INDEX sign_in_attempts_email ON sign_in_attempts (email_key, at);
CREATE INDEX sign_in_attempts_client ON sign_in_attempts (client, at);
