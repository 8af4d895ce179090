-- 0011_inmate_records: the bureau's inmate register (issue 14).
-- An inmate is held, released or archived; a released or archived inmate keeps its history
-- (links, threads, audit) but has no open family link. A relative is told of what happened to
-- its links by a stored notice (read over REST, told live), and supervisors' photos are
-- stored re-encoded, served only as images.

ALTER TABLE inmates ADD COLUMN status text NOT NULL DEFAULT 'held'
    CHECK (status IN ('held', 'released', 'archived'));
ALTER TABLE inmates ADD COLUMN status_at timestamptz;

CREATE TABLE relative_notices (
    id          bigserial PRIMARY KEY,
    relative_id bigint NOT NULL REFERENCES users (id),
    inmate_id   bigint REFERENCES inmates (id),
    kind        text NOT NULL CHECK (kind IN ('released', 'archived', 'transferred')),
    title       text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX relative_notices_relative ON relative_notices (relative_id, id);

CREATE TABLE photos (
    id           bigserial PRIMARY KEY,
    owner_id     bigint NOT NULL REFERENCES users (id),
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg')),
    data         bytea NOT NULL,
    width        integer NOT NULL,
    height       integer NOT NULL,
    created_at   timestamptz NOT NULL
);
