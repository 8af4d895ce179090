-- 0023_consent: what an inmate agreed to share with each verified relative, and the family
-- case (one conversation shared by the inmate's verified relatives). Both are recorded by an
-- officer of the inmate's prison and audited in the same transaction (storage/consent.py).

-- The inmate's decision per relative: the categories of its card that relative may learn
-- (comma-separated, in card order; '' shares nothing). No row: the deployment's default
-- (KINLINE_CONSENT_DEFAULT).
CREATE TABLE consent_scopes (
    inmate_id   bigint NOT NULL REFERENCES inmates (id),
    relative_id bigint NOT NULL REFERENCES users (id),
    categories  text NOT NULL,
    decided_on  date NOT NULL,
    witness     text NOT NULL,
    note        text NOT NULL DEFAULT '',
    recorded_by bigint NOT NULL REFERENCES users (id),
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (inmate_id, relative_id)
);

-- The inmate's agreement to a family case. conversation_id is the shared thread (the
-- conversation of the relative who had it first), kept when the case is turned off and on.
CREATE TABLE family_cases (
    inmate_id       bigint PRIMARY KEY REFERENCES inmates (id),
    conversation_id bigint NOT NULL REFERENCES conversations (id),
    enabled         boolean NOT NULL,
    decided_on      date NOT NULL,
    witness         text NOT NULL,
    note            text NOT NULL DEFAULT '',
    recorded_by     bigint NOT NULL REFERENCES users (id),
    recorded_at     timestamptz NOT NULL
);

-- Who shares the family thread, from which seq on: a relative sees the messages after
-- joined_seq (the thread's last seq when it joined), never the ones before.
CREATE TABLE family_members (
    conversation_id bigint NOT NULL REFERENCES conversations (id),
    relative_id     bigint NOT NULL REFERENCES users (id),
    joined_seq      bigint NOT NULL,
    joined_at       timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, relative_id)
);
CREATE INDEX family_members_relative ON family_members (relative_id);

-- A relative verified (again) for an inmate with a family case joins the shared thread from
-- now on, in the verification's own transaction: whatever path verifies the link.
CREATE FUNCTION kinline_family_join() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO family_members (conversation_id, relative_id, joined_seq, joined_at)
    SELECT c.id, NEW.relative_id, c.last_seq, COALESCE(NEW.decided_at, NEW.created_at)
      FROM family_cases f JOIN conversations c ON c.id = f.conversation_id
     WHERE f.inmate_id = NEW.inmate_id AND c.relative_id <> NEW.relative_id
    ON CONFLICT (conversation_id, relative_id)
    DO UPDATE SET joined_seq = EXCLUDED.joined_seq, joined_at = EXCLUDED.joined_at;
    RETURN NULL;
END $$;

CREATE TRIGGER family_links_join_update AFTER UPDATE OF state ON family_links
    FOR EACH ROW WHEN (NEW.state = 'verified' AND OLD.state <> 'verified'
                       AND NEW.inmate_id IS NOT NULL)
    EXECUTE FUNCTION kinline_family_join();

CREATE TRIGGER family_links_join_insert AFTER INSERT ON family_links
    FOR EACH ROW WHEN (NEW.state = 'verified' AND NEW.inmate_id IS NOT NULL)
    EXECUTE FUNCTION kinline_family_join();

-- An officer's answer in a family case's shared thread owes each verified member a
-- notification too (the thread's own relative gets it from 0008's trigger), in the message's
-- own transaction.
CREATE FUNCTION kinline_outbox_family_answer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (relative_id, event, conversation_id, message_id, next_at, created_at)
    SELECT m.relative_id, 'answer', m.conversation_id, NEW.id, NEW.created_at, NEW.created_at
      FROM family_members m
      JOIN family_cases f ON f.conversation_id = m.conversation_id AND f.enabled
      JOIN conversations c ON c.id = m.conversation_id
      JOIN family_links l ON l.relative_id = m.relative_id AND l.inmate_id = c.inmate_id
                         AND l.state = 'verified'
     WHERE m.conversation_id = NEW.conversation_id AND kinline_reachable(m.relative_id);
    RETURN NULL;
END $$;

CREATE TRIGGER messages_outbox_family AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.kind = 'text' AND NEW.sender_role = 'officer')
    EXECUTE FUNCTION kinline_outbox_family_answer();
