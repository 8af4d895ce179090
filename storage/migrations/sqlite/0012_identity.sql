-- 0012_identity: a second registration with an id number already in use locks nobody out
-- (the PostgreSQL migration of the same number says how).
ALTER TABLE users ADD COLUMN id_number_claim blob;
ALTER TABLE users ADD COLUMN id_conflict integer NOT NULL DEFAULT 0;
CREATE INDEX users_id_number_claim ON users (id_number_claim) WHERE id_number_claim IS NOT NULL;
