-- 0008_outreach: reaching relatives outside the page (DESIGN.md section 8).
-- WeChat followers of the official account (subscribe/unsubscribe events), kept whether or
-- not bound: the bureau figures count them.
CREATE TABLE wechat_followers (
    openid     text PRIMARY KEY,
    following  boolean NOT NULL,
    first_at   timestamptz NOT NULL,
    changed_at timestamptz NOT NULL
);

-- A relative's WeChat OpenID (one each way). ``inmate_id``: the inmate a WeChat text is
-- about, chosen by the relative when it is verified for several. ``last_inbound_at``: its
-- last message from WeChat (customer-service messages are allowed for 48 hours after it).
CREATE TABLE wechat_bindings (
    relative_id     bigint PRIMARY KEY REFERENCES users (id),
    openid          text NOT NULL UNIQUE,
    bound_at        timestamptz NOT NULL,
    inmate_id       bigint REFERENCES inmates (id),
    last_inbound_at timestamptz
);

-- The platform's access token, shared by every server process.
CREATE TABLE wechat_tokens (
    appid      text PRIMARY KEY,
    token      text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- How a relative wants to be told when it is not connected: auto (WeChat if bound, else Web
-- Push), one channel, or none (opted out).
CREATE TABLE notify_prefs (
    relative_id bigint PRIMARY KEY REFERENCES users (id),
    channel     text NOT NULL CHECK (channel IN ('auto', 'wechat', 'push', 'sms', 'none')),
    updated_at  timestamptz NOT NULL
);

CREATE TABLE push_subscriptions (
    id          bigserial PRIMARY KEY,
    relative_id bigint NOT NULL REFERENCES users (id),
    endpoint    text NOT NULL UNIQUE,
    p256dh      text NOT NULL,
    auth        text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX push_subscriptions_relative ON push_subscriptions (relative_id);

-- The outbox: one row per notification owed to a relative, written in the transaction of
-- what it tells (the triggers below), sent by one process at a time (a claim takes the row
-- with FOR UPDATE SKIP LOCKED and leases it), retried with back-off, done once.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    relative_id     bigint NOT NULL REFERENCES users (id),
    event           text NOT NULL CHECK (event IN ('answer', 'link', 'visit', 'complaint')),
    conversation_id bigint REFERENCES conversations (id),
    message_id      bigint REFERENCES messages (id),
    object_id       bigint,          -- the link, visit request or complaint decided
    decision        text,            -- verified, rejected, approved, declined, answered ...
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sent', 'skipped', 'failed')),
    channel         text,            -- how it reached the relative: wechat, template, push, sms
    attempts        integer NOT NULL DEFAULT 0,
    next_at         timestamptz NOT NULL,
    lease_until     timestamptz,     -- claimed by a sender until then
    created_at      timestamptz NOT NULL,
    done_at         timestamptz,
    detail          text             -- why it was skipped or failed
);
CREATE INDEX outbox_due ON outbox (next_at) WHERE state = 'pending';
CREATE INDEX outbox_message ON outbox (message_id);
CREATE INDEX outbox_conversation ON outbox (conversation_id, done_at);

CREATE TABLE outbox_attempts (
    id        bigserial PRIMARY KEY,
    outbox_id bigint NOT NULL REFERENCES outbox (id),
    at        timestamptz NOT NULL,
    channel   text NOT NULL,
    ok        boolean NOT NULL,
    detail    text NOT NULL
);
CREATE INDEX outbox_attempts_item ON outbox_attempts (outbox_id);

-- Whether the relative has a way to be told (and has not opted out); a relative without one
-- gets no outbox row at all.
CREATE FUNCTION kinline_reachable(p_relative bigint) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT COALESCE((SELECT channel FROM notify_prefs WHERE relative_id = p_relative), 'auto')
               <> 'none'
       AND (EXISTS (SELECT 1 FROM wechat_bindings WHERE relative_id = p_relative)
            OR EXISTS (SELECT 1 FROM push_subscriptions WHERE relative_id = p_relative)
            OR EXISTS (SELECT 1 FROM notify_prefs
                        WHERE relative_id = p_relative AND channel = 'sms'))
$$;

-- An officer's answer (text, never a note) owes the conversation's relative a notification,
-- in the message's own transaction.
CREATE FUNCTION kinline_outbox_answer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (relative_id, event, conversation_id, message_id, next_at, created_at)
    SELECT c.relative_id, 'answer', c.id, NEW.id, NEW.created_at, NEW.created_at
      FROM conversations c
     WHERE c.id = NEW.conversation_id AND kinline_reachable(c.relative_id);
    RETURN NULL;
END $$;

CREATE TRIGGER messages_outbox AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.kind = 'text' AND NEW.sender_role = 'officer')
    EXECUTE FUNCTION kinline_outbox_answer();

-- Decisions on a relative's link request and visit request, in the decision's transaction.
CREATE FUNCTION kinline_outbox_decision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF kinline_reachable(NEW.relative_id) THEN
        INSERT INTO outbox (relative_id, event, object_id, decision, next_at, created_at)
        VALUES (NEW.relative_id, TG_ARGV[0], NEW.id, NEW.state, now(), now());
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER family_links_outbox AFTER UPDATE OF state ON family_links
    FOR EACH ROW WHEN (OLD.state = 'pending' AND NEW.state IN ('verified', 'rejected'))
    EXECUTE FUNCTION kinline_outbox_decision('link');

CREATE TRIGGER visit_requests_outbox AFTER UPDATE OF state ON visit_requests
    FOR EACH ROW WHEN (OLD.state = 'pending' AND NEW.state IN ('approved', 'declined'))
    EXECUTE FUNCTION kinline_outbox_decision('visit');

CREATE FUNCTION kinline_outbox_complaint() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF kinline_reachable(NEW.complainant_id) THEN
        INSERT INTO outbox (relative_id, event, object_id, decision, next_at, created_at)
        VALUES (NEW.complainant_id, 'complaint', NEW.id, NEW.state, now(), now());
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER complaints_outbox AFTER UPDATE OF state ON complaints
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state AND NEW.state = 'answered')
    EXECUTE FUNCTION kinline_outbox_complaint();
-- (end of the outreach part)
