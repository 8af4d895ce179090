-- 0012_identity: a second registration with an id number already in use locks nobody out.
--
-- users.id_number_hash stays unique: it is held by the first account that gave the number.
-- A later account giving the same number is created all the same, with the hash kept in
-- id_number_claim (not unique) and id_conflict set, for the officer deciding its link
-- requests to see; whoever is the real person shows the documents at the prison.
ALTER TABLE users ADD COLUMN id_number_claim bytea;
ALTER TABLE users ADD COLUMN id_conflict boolean NOT NULL DEFAULT false;
CREATE INDEX users_id_number_claim ON users (id_number_claim) WHERE id_number_claim IS NOT NULL;

-- Codes sent by SMS to prove a phone (registration) or to reset a password. Only a keyed
-- hash of the code is kept; a code is single-use, short-lived and allows a few tries.
CREATE TABLE phone_codes (
    id         bigserial PRIMARY KEY,
    phone      text NOT NULL,
    purpose    text NOT NULL CHECK (purpose IN ('register', 'reset')),
    code_hash  bytea NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    used_at    timestamptz
);
CREATE INDEX phone_codes_phone ON phone_codes (phone, purpose, created_at);
