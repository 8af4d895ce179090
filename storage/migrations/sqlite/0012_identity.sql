-- 0012_identity: a second registration with an id number already in use locks nobody out
-- (the PostgreSQL migration of the same number says how).
ALTER TABLE users ADD COLUMN id_number_claim blob;
ALTER TABLE users ADD COLUMN id_conflict integer NOT NULL DEFAULT 0;
CREATE INDEX users_id_number_claim ON users (id_number_claim) WHERE id_number_claim IS NOT NULL;

CREATE TABLE phone_codes (
    id         INTEGER PRIMARY KEY,
    phone      text NOT NULL,
    purpose    text NOT NULL CHECK (purpose IN ('register', 'reset')),
    code_hash  blob NOT NULL,
    created_at integer NOT NULL,
    expires_at integer NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    used_at    integer
);
CREATE INDEX phone_codes_phone ON phone_codes (phone, purpose, created_at);
