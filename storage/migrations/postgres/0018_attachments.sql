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
    FOR EACH ROW WHEN (NEW.kind <> 'system')
    EXECUTE FUNCTION kinline_attachments_sent();
