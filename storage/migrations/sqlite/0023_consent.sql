-- 0023_consent: consent scopes and the family case (the PostgreSQL migration of the same
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

-- An officer's answer in a family case's shared thread owes each verified member a
-- notification too (see the PostgreSQL migration).
CREATE TRIGGER messages_outbox_family AFTER INSERT ON messages
WHEN NEW.kind = 'text' AND NEW.sender_role = 'officer'
BEGIN
    INSERT INTO outbox (relative_id, event, conversation_id, message_id, next_at, created_at)
    SELECT m.relative_id, 'answer', m.conversation_id, NEW.id, NEW.created_at, NEW.created_at
      FROM family_members m
      JOIN family_cases f ON f.conversation_id = m.conversation_id AND f.enabled
      JOIN conversations c ON c.id = m.conversation_id
      JOIN family_links l ON l.relative_id = m.relative_id AND l.inmate_id = c.inmate_id
                         AND l.state = 'verified'
     WHERE m.conversation_id = NEW.conversation_id
       AND COALESCE((SELECT channel FROM notify_prefs WHERE relative_id = m.relative_id),
                    'auto') <> 'none'
       AND (EXISTS (SELECT 1 FROM wechat_bindings WHERE relative_id = m.relative_id)
            OR EXISTS (SELECT 1 FROM push_subscriptions WHERE relative_id = m.relative_id)
            OR EXISTS (SELECT 1 FROM notify_prefs
                        WHERE relative_id = m.relative_id AND channel = 'sms'));
END;
