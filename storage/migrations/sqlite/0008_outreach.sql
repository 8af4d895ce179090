-- 0008_outreach: reaching relatives outside the page (DESIGN.md section 8). The same tables
-- and triggers as the PostgreSQL migration (see there); timestamps are integer microseconds.
CREATE TABLE wechat_followers (
    openid     text PRIMARY KEY,
    following  integer NOT NULL,
    first_at   integer NOT NULL,
    changed_at integer NOT NULL
);

CREATE TABLE wechat_bindings (
    relative_id     INTEGER PRIMARY KEY REFERENCES users (id),
    openid          text NOT NULL UNIQUE,
    bound_at        integer NOT NULL,
    inmate_id       integer REFERENCES inmates (id),
    last_inbound_at integer
);

CREATE TABLE wechat_tokens (
    appid      text PRIMARY KEY,
    token      text NOT NULL,
    expires_at integer NOT NULL
);

CREATE TABLE notify_prefs (
    relative_id INTEGER PRIMARY KEY REFERENCES users (id),
    channel     text NOT NULL CHECK (channel IN ('auto', 'wechat', 'push', 'sms', 'none')),
    updated_at  integer NOT NULL
);

CREATE TABLE push_subscriptions (
    id          INTEGER PRIMARY KEY,
    relative_id integer NOT NULL REFERENCES users (id),
    endpoint    text NOT NULL UNIQUE,
    p256dh      text NOT NULL,
    auth        text NOT NULL,
    created_at  integer NOT NULL
);
CREATE INDEX push_subscriptions_relative ON push_subscriptions (relative_id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    relative_id     integer NOT NULL REFERENCES users (id),
    event           text NOT NULL CHECK (event IN ('answer', 'link', 'visit', 'complaint')),
    conversation_id integer REFERENCES conversations (id),
    message_id      integer REFERENCES messages (id),
    object_id       integer,
    decision        text,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sent', 'skipped', 'failed')),
    channel         text,
    attempts        integer NOT NULL DEFAULT 0,
    next_at         integer NOT NULL,
    lease_until     integer,
    created_at      integer NOT NULL,
    done_at         integer,
    detail          text
);
CREATE INDEX outbox_due ON outbox (next_at) WHERE state = 'pending';
CREATE INDEX outbox_message ON outbox (message_id);
CREATE INDEX outbox_conversation ON outbox (conversation_id, done_at);

CREATE TABLE outbox_attempts (
    id        INTEGER PRIMARY KEY,
    outbox_id integer NOT NULL REFERENCES outbox (id),
    at        integer NOT NULL,
    channel   text NOT NULL,
    ok        integer NOT NULL,
    detail    text NOT NULL
);
CREATE INDEX outbox_attempts_item ON outbox_attempts (outbox_id);

-- kinline_reachable (PostgreSQL) is spelled out in each trigger's WHERE.
CREATE TRIGGER messages_outbox AFTER INSERT ON messages
WHEN NEW.kind = 'text' AND NEW.sender_role = 'officer'
BEGIN
    INSERT INTO outbox (relative_id, event, conversation_id, message_id, next_at, created_at)
    SELECT c.relative_id, 'answer', c.id, NEW.id, NEW.created_at, NEW.created_at
      FROM conversations c
     WHERE c.id = NEW.conversation_id
       AND COALESCE((SELECT channel FROM notify_prefs WHERE relative_id = c.relative_id),
                    'auto') <> 'none'
       AND (EXISTS (SELECT 1 FROM wechat_bindings WHERE relative_id = c.relative_id)
            OR EXISTS (SELECT 1 FROM push_subscriptions WHERE relative_id = c.relative_id)
            OR EXISTS (SELECT 1 FROM notify_prefs
                        WHERE relative_id = c.relative_id AND channel = 'sms'));
END;

CREATE TRIGGER family_links_outbox AFTER UPDATE OF state ON family_links
WHEN OLD.state = 'pending' AND NEW.state IN ('verified', 'rejected')
BEGIN
    INSERT INTO outbox (relative_id, event, object_id, decision, next_at, created_at)
    SELECT NEW.relative_id, 'link', NEW.id, NEW.state,
           CAST((julianday('now') - 2440587.5) * 86400000000 AS integer),
           CAST((julianday('now') - 2440587.5) * 86400000000 AS integer)
     WHERE COALESCE((SELECT channel FROM notify_prefs WHERE relative_id = NEW.relative_id),
                    'auto') <> 'none'
       AND (EXISTS (SELECT 1 FROM wechat_bindings WHERE relative_id = NEW.relative_id)
            OR EXISTS (SELECT 1 FROM push_subscriptions WHERE relative_id = NEW.relative_id)
            OR EXISTS (SELECT 1 FROM notify_prefs
                        WHERE relative_id = NEW.relative_id AND channel = 'sms'));
END;

CREATE TRIGGER visit_requests_outbox AFTER UPDATE OF state ON visit_requests
WHEN OLD.state = 'pending' AND NEW.state IN ('approved', 'declined')
BEGIN
    INSERT INTO outbox (relative_id, event, object_id, decision, next_at, created_at)
    SELECT NEW.relative_id, 'visit', NEW.id, NEW.state,
           CAST((julianday('now') - 2440587.5) * 86400000000 AS integer),
           CAST((julianday('now') - 2440587.5) * 86400000000 AS integer)
     WHERE COALESCE((SELECT channel FROM notify_prefs WHERE relative_id = NEW.relative_id),
                    'auto') <> 'none'
       AND (EXISTS (SELECT 1 FROM wechat_bindings WHERE relative_id = NEW.relative_id)
            OR EXISTS (SELECT 1 FROM push_subscriptions WHERE relative_id = NEW.relative_id)
            OR EXISTS (SELECT 1 FROM notify_prefs
                        WHERE relative_id = NEW.relative_id AND channel = 'sms'));
END;

CREATE TRIGGER complaints_outbox AFTER UPDATE OF state ON complaints
WHEN OLD.state IS NOT NEW.state AND NEW.state = 'answered'
BEGIN
    INSERT INTO outbox (relative_id, event, object_id, decision, next_at, created_at)
    SELECT NEW.complainant_id, 'complaint', NEW.id, NEW.state,
           CAST((julianday('now') - 2440587.5) * 86400000000 AS integer),
           CAST((julianday('now') - 2440587.5) * 86400000000 AS integer)
     WHERE COALESCE((SELECT channel FROM notify_prefs WHERE relative_id = NEW.complainant_id),
                    'auto') <> 'none'
       AND (EXISTS (SELECT 1 FROM wechat_bindings WHERE relative_id = NEW.complainant_id)
            OR EXISTS (SELECT 1 FROM push_subscriptions WHERE relative_id = NEW.complainant_id)
            OR EXISTS (SELECT 1 FROM notify_prefs
                        WHERE relative_id = NEW.complainant_id AND channel = 'sms'));
END;
-- (end of the outreach part)
