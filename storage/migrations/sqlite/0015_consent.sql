-- 0015_consent: consent scopes and the family case (the PostgreSQL migration of the same
-- number explains the tables). Dates are ISO text, times integer microseconds.

CREATE TABLE consent_scopes (
    inmate_id   bigint NOT NULL REFERENCES inmates (id),
    relative_id bigint NOT NULL REFERENCES users (id),
    categories  text NOT NULL,
    decided_on  text NOT NULL,
    witness     text NOT NULL,
    note        text NOT NULL DEFAULT '',
    recorded_by bigint NOT NULL REFERENCES users (id),
    recorded_at integer NOT NULL,
    PRIMARY KEY (inmate_id, relative_id)
);

CREATE TABLE family_cases (
    inmate_id       bigint PRIMARY KEY REFERENCES inmates (id),
    conversation_id bigint NOT NULL REFERENCES conversations (id),
    enabled         boolean NOT NULL,
    decided_on      text NOT NULL,
    witness         text NOT NULL,
    note            text NOT NULL DEFAULT '',
    recorded_by     bigint NOT NULL REFERENCES users (id),
    recorded_at     integer NOT NULL
);

CREATE TABLE family_members (
    conversation_id bigint NOT NULL REFERENCES conversations (id),
    relative_id     bigint NOT NULL REFERENCES users (id),
    joined_seq      bigint NOT NULL,
    joined_at       integer NOT NULL,
    PRIMARY KEY (conversation_id, relative_id)
);
CREATE INDEX family_members_relative ON family_members (relative_id);

CREATE TRIGGER family_links_join_update AFTER UPDATE OF state ON family_links
    WHEN NEW.state = 'verified' AND OLD.state <> 'verified' AND NEW.inmate_id IS NOT NULL
BEGIN
    INSERT INTO family_members (conversation_id, relative_id, joined_seq, joined_at)
    SELECT c.id, NEW.relative_id, c.last_seq, COALESCE(NEW.decided_at, NEW.created_at)
      FROM family_cases f JOIN conversations c ON c.id = f.conversation_id
     WHERE f.inmate_id = NEW.inmate_id AND c.relative_id <> NEW.relative_id
    ON CONFLICT (conversation_id, relative_id)
    DO UPDATE SET joined_seq = excluded.joined_seq, joined_at = excluded.joined_at;
END;

CREATE TRIGGER family_links_join_insert AFTER INSERT ON family_links
    WHEN NEW.state = 'verified' AND NEW.inmate_id IS NOT NULL
BEGIN
    INSERT INTO family_members (conversation_id, relative_id, joined_seq, joined_at)
    SELECT c.id, NEW.relative_id, c.last_seq, COALESCE(NEW.decided_at, NEW.created_at)
      FROM family_cases f JOIN conversations c ON c.id = f.conversation_id
     WHERE f.inmate_id = NEW.inmate_id AND c.relative_id <> NEW.relative_id
    ON CONFLICT (conversation_id, relative_id)
    DO UPDATE SET joined_seq = excluded.joined_seq, joined_at = excluded.joined_at;
END;
