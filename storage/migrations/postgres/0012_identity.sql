-- 0012_identity: a second registration with an id number already in use locks nobody out.
--
-- users.id_number_hash stays unique: it is held by the first account that gave the number.
-- A later account giving the same number is created all the same, with the hash kept in
-- id_number_claim (not unique) and id_conflict set, for the officer deciding its link
-- requests to see; whoever is the real person shows the documents at the prison.
ALTER TABLE users ADD COLUMN id_number_claim bytea;
ALTER TABLE users ADD COLUMN id_conflict boolean NOT NULL DEFAULT false;
CREATE INDEX users_id_number_claim ON users (id_number_claim) WHERE id_number_claim IS NOT NULL;
