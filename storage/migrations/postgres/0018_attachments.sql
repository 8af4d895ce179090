-- Attachments (issue 18): files uploaded by a relative or an officer, then sent with a message
-- or carried by a link request as evidence. The bytes live in the object store (local disk
-- or S3-compatible: server/files.py); a row says what and whose each file is.
--
-- An upload is bound to the message it goes with BEFORE the message is appended, by the
-- message's key (conversation, sender, cid), so a retried send binds the same files again and
-- the append itself stays as it was; this trigger then records the message's id in the
-- append's own transaction. A row with neither a message nor a link is an upload never sent,
-- swept after a while. Objects whose rows are gone wait in attachment_trash until the store
-- has deleted them, so a crash between the two never leaves a file nobody can find.

CREATE TABLE attachments (
    id              bigserial PRIMARY KEY,
    owner_id        bigint NOT NULL REFERENCES users (id),
    content_type    text NOT NULL,
    name            text NOT NULL,
    size            bigint NOT NULL,
    sha256          text NOT NULL,
    width           integer,
    height          integer,
    object_key      text NOT NULL UNIQUE,
    thumb_key       text,
    conversation_id bigint REFERENCES conversations (id),
    cid             text,
    message_id      bigint REFERENCES messages (id),
    link_id         bigint REFERENCES family_links (id),
    created_at      timestamptz NOT NULL
);
CREATE INDEX attachments_by_message_key ON attachments (conversation_id, owner_id, cid);
CREATE INDEX attachments_by_message ON attachments (message_id);
CREATE INDEX attachments_by_link ON attachments (link_id);
CREATE INDEX attachments_by_owner ON attachments (owner_id);
CREATE INDEX attachments_unsent ON attachments (created_at)
    WHERE message_id IS NULL AND link_id IS NULL;

CREATE TABLE attachment_trash (
    object_key   text PRIMARY KEY,
    discarded_at timestamptz NOT NULL
);

CREATE FUNCTION kinline_attachments_sent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE attachments SET message_id = NEW.id
     WHERE conversation_id = NEW.conversation_id AND owner_id = NEW.sender_id
       AND cid = NEW.cid AND message_id IS NULL;
    RETURN NULL;
END $$;

CREATE TRIGGER messages_attachments_sent AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION kinline_attachments_sent();

-- The hash chain (migration 0014, DESIGN.md section 9) includes each message's files as
-- "attachments": [hex sha256, ...]. 0014's life-cycle function, unchanged but for that
-- argument of kinline_message_form: the files are bound before the append, so they are
-- known in the statement that stores the message (none: the form omits the key, as before).
CREATE OR REPLACE FUNCTION kinline_life_cycle() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c conversations%ROWTYPE;
    texted boolean := NEW.kind = 'text';
BEGIN
    SELECT * INTO c FROM conversations WHERE id = NEW.conversation_id;
    NEW.cycle := c.cycle;
    -- chain: h_n = sha256(h_(n-1) || C(m)); every branch below stores it as the head
    NEW.hash := sha256(c.chain_head || kinline_message_form(
        kinline_at_us(NEW.created_at), NEW.body, NEW.conversation_id, NEW.kind, NEW.sender_id,
        NEW.seq,
        -- attachments: the files bound to the message's key, exactly those the trigger
        -- messages_attachments_sent then records as the message's, in upload order
        (SELECT array_agg(a.sha256 ORDER BY a.id) FROM attachments a
          WHERE a.conversation_id = NEW.conversation_id AND a.owner_id = NEW.sender_id
            AND a.cid = NEW.cid AND a.message_id IS NULL)));
    IF texted AND NEW.sender_role = 'relative' AND c.state IN ('new', 'resolved') THEN
        NEW.effect := 'opened';
        NEW.cycle := c.cycle + 1;
        UPDATE conversations
           SET state = 'waiting', cycle = NEW.cycle, wait_started_at = NEW.created_at,
               first_reply_at = NULL, assigned_officer_id = NULL, handover_note = NULL,
               last_seq = NEW.seq, updated_at = NEW.created_at, chain_head = NEW.hash
         WHERE id = NEW.conversation_id;
        INSERT INTO conversation_cycles (conversation_id, cycle, prison_id, wait_started_at)
        VALUES (NEW.conversation_id, NEW.cycle, c.prison_id, NEW.created_at);
    ELSIF texted AND NEW.sender_role = 'officer' AND c.state IN ('waiting', 'active') THEN
        IF c.state = 'waiting' AND c.assigned_officer_id IS NULL THEN
            NEW.effect := 'claimed';
            INSERT INTO audit_entries (at, actor_id, action, object_type, object_id, prison_id,
                                       before, after)
            VALUES (NEW.created_at, NEW.sender_id, 'conversation.claimed', 'conversation',
                    NEW.conversation_id, c.prison_id,
                    jsonb_build_object('state', 'waiting', 'officer_id', NULL, 'cycle', c.cycle),
                    jsonb_build_object('state', 'active', 'officer_id', NEW.sender_id,
                                       'cycle', c.cycle, 'via', 'reply'));
        END IF;
        IF c.first_reply_at IS NULL THEN
            UPDATE conversation_cycles SET first_reply_at = NEW.created_at
             WHERE conversation_id = NEW.conversation_id AND cycle = c.cycle
               AND first_reply_at IS NULL;
        END IF;
        UPDATE conversations
           SET first_reply_at = COALESCE(first_reply_at, NEW.created_at),
               state = CASE WHEN NEW.effect = 'claimed' THEN 'active' ELSE state END,
               assigned_officer_id = CASE WHEN NEW.effect = 'claimed' THEN NEW.sender_id
                                          ELSE assigned_officer_id END,
               last_seq = NEW.seq, updated_at = NEW.created_at, chain_head = NEW.hash
         WHERE id = NEW.conversation_id;
    ELSE
        UPDATE conversations
           SET last_seq = NEW.seq, updated_at = NEW.created_at, chain_head = NEW.hash
         WHERE id = NEW.conversation_id;
    END IF;
    RETURN NEW;
END $$;

