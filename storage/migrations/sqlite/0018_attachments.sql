-- Attachments (issue 18): see the PostgreSQL migration of the same number for the design.
-- The hash chain includes a message's files: the adaptor's append reads the files bound to
-- the message's key (exactly those this trigger records as the message's) before it hashes.

CREATE TABLE attachments (
    id              INTEGER PRIMARY KEY,
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
    created_at      integer NOT NULL
);
CREATE INDEX attachments_by_message_key ON attachments (conversation_id, owner_id, cid);
CREATE INDEX attachments_by_message ON attachments (message_id);
CREATE INDEX attachments_by_link ON attachments (link_id);
CREATE INDEX attachments_by_owner ON attachments (owner_id);
CREATE INDEX attachments_unsent ON attachments (created_at)
    WHERE message_id IS NULL AND link_id IS NULL;

CREATE TABLE attachment_trash (
    object_key   text PRIMARY KEY,
    discarded_at integer NOT NULL
);

CREATE TRIGGER messages_attachments_sent AFTER INSERT ON messages
BEGIN
    UPDATE attachments SET message_id = NEW.id
     WHERE conversation_id = NEW.conversation_id AND owner_id = NEW.sender_id
       AND cid = NEW.cid AND message_id IS NULL;
END;
