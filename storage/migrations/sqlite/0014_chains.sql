-- 0014_chains: the tamper-evident record (the PostgreSQL migration of the same number says
-- what and why). SQLite has no sha256, so the adaptor registers kinline_message_hash and
-- kinline_audit_hash (domain/chain.py, storage/sqlite.py) on its connections: the adaptor
-- hashes each message it appends itself, these triggers keep the conversation's head, and an
-- audit entry, whoever inserts it, is chained by the AFTER INSERT trigger below (SQLite
-- triggers cannot change NEW: the row is completed by an UPDATE that the append-only rule
-- allows only for filling a missing hash). A message is kept as written (messages_kept:
-- only retention may empty its text).

ALTER TABLE conversations ADD COLUMN chain_head blob NOT NULL
    DEFAULT X'0000000000000000000000000000000000000000000000000000000000000000';
ALTER TABLE messages ADD COLUMN hash blob;
ALTER TABLE audit_entries ADD COLUMN chain_n integer;
ALTER TABLE audit_entries ADD COLUMN hash blob;
CREATE UNIQUE INDEX audit_entries_chain_n ON audit_entries (chain_n);

CREATE TABLE audit_chain (
    one  integer PRIMARY KEY CHECK (one = 1),
    n    integer NOT NULL,
    head blob NOT NULL
);

DROP TRIGGER audit_entries_no_update;
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
WHEN NOT (OLD.hash IS NULL AND NEW.hash IS NOT NULL AND NEW.id = OLD.id AND NEW.at = OLD.at
          AND NEW.actor_id IS OLD.actor_id AND NEW.action = OLD.action
          AND NEW.object_type = OLD.object_type AND NEW.object_id IS OLD.object_id
          AND NEW.prison_id IS OLD.prison_id AND NEW.before IS OLD.before
          AND NEW.after IS OLD.after)
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;

-- chain what is already stored: messages per conversation by seq, audit entries by id
CREATE TEMP TABLE chain_fill AS
WITH RECURSIVE ch (id, conv, seq, h) AS (
    SELECT id, conversation_id, seq,
           kinline_message_hash(X'0000000000000000000000000000000000000000000000000000000000000000',
                                created_at, body, conversation_id, kind, sender_id, seq)
      FROM messages WHERE seq = 1
    UNION ALL
    SELECT m.id, m.conversation_id, m.seq,
           kinline_message_hash(ch.h, m.created_at, m.body, m.conversation_id, m.kind,
                                m.sender_id, m.seq)
      FROM ch JOIN messages m ON m.conversation_id = ch.conv AND m.seq = ch.seq + 1
)
SELECT id, conv, seq, h FROM ch;
CREATE INDEX chain_fill_id ON chain_fill (id);
UPDATE messages SET hash = (SELECT h FROM chain_fill f WHERE f.id = messages.id);
UPDATE conversations
   SET chain_head = (SELECT f.h FROM chain_fill f WHERE f.conv = conversations.id
                      ORDER BY f.seq DESC LIMIT 1)
 WHERE id IN (SELECT conv FROM chain_fill);
DROP TABLE chain_fill;

CREATE TEMP TABLE audit_order AS
SELECT id, row_number() OVER (ORDER BY id) AS n FROM audit_entries;
CREATE UNIQUE INDEX audit_order_n ON audit_order (n);
CREATE TEMP TABLE audit_fill AS
WITH RECURSIVE ch (id, n, h) AS (
    SELECT a.id, o.n,
           kinline_audit_hash(X'0000000000000000000000000000000000000000000000000000000000000000',
                              a.id, a.at, a.actor_id, a.action, a.object_type, a.object_id,
                              a.prison_id, a.before, a.after)
      FROM audit_order o JOIN audit_entries a ON a.id = o.id WHERE o.n = 1
    UNION ALL
    SELECT a.id, o.n,
           kinline_audit_hash(ch.h, a.id, a.at, a.actor_id, a.action, a.object_type,
                              a.object_id, a.prison_id, a.before, a.after)
      FROM ch JOIN audit_order o ON o.n = ch.n + 1 JOIN audit_entries a ON a.id = o.id
)
SELECT id, n, h FROM ch;
CREATE INDEX audit_fill_id ON audit_fill (id);
UPDATE audit_entries
   SET chain_n = (SELECT n FROM audit_fill f WHERE f.id = audit_entries.id),
       hash = (SELECT h FROM audit_fill f WHERE f.id = audit_entries.id);
INSERT INTO audit_chain (one, n, head)
SELECT 1, COALESCE(MAX(n), 0),
       COALESCE((SELECT h FROM audit_fill ORDER BY n DESC LIMIT 1),
                X'0000000000000000000000000000000000000000000000000000000000000000')
  FROM audit_fill;
DROP TABLE audit_fill;
DROP TABLE audit_order;

CREATE TRIGGER audit_entries_chain AFTER INSERT ON audit_entries
BEGIN
    INSERT INTO audit_chain (one, n, head)
    VALUES (1, 0, X'0000000000000000000000000000000000000000000000000000000000000000')
    ON CONFLICT (one) DO NOTHING;
    UPDATE audit_chain
       SET n = n + 1,
           head = kinline_audit_hash(head, NEW.id, NEW.at, NEW.actor_id, NEW.action,
                                     NEW.object_type, NEW.object_id, NEW.prison_id,
                                     NEW.before, NEW.after);
    UPDATE audit_entries
       SET chain_n = (SELECT n FROM audit_chain), hash = (SELECT head FROM audit_chain)
     WHERE id = NEW.id;
END;

CREATE TRIGGER messages_chain_head AFTER INSERT ON messages WHEN NEW.hash IS NOT NULL
BEGIN
    UPDATE conversations SET chain_head = NEW.hash WHERE id = NEW.conversation_id;
END;

CREATE TABLE chain_anchors (
    day     text PRIMARY KEY,
    digest  blob NOT NULL,
    heads   text NOT NULL,
    audit_n integer NOT NULL,
    at      integer NOT NULL
);
CREATE TRIGGER chain_anchors_no_update BEFORE UPDATE ON chain_anchors
BEGIN SELECT RAISE(ABORT, 'anchors are kept as published'); END;
CREATE TRIGGER chain_anchors_no_delete BEFORE DELETE ON chain_anchors
BEGIN SELECT RAISE(ABORT, 'anchors are kept as published'); END;

CREATE TRIGGER messages_kept
BEFORE UPDATE OF conversation_id, seq, sender_id, kind, body, created_at, hash, purged_at
ON messages
WHEN NOT (OLD.purged_at IS NULL AND NEW.purged_at IS NOT NULL AND NEW.body = ''
          AND NEW.conversation_id = OLD.conversation_id AND NEW.seq = OLD.seq
          AND NEW.sender_id = OLD.sender_id AND NEW.kind = OLD.kind
          AND NEW.created_at = OLD.created_at AND NEW.hash IS OLD.hash)
BEGIN SELECT RAISE(ABORT, 'messages are kept as written'); END;
CREATE TRIGGER messages_kept_no_delete BEFORE DELETE ON messages
BEGIN SELECT RAISE(ABORT, 'messages are kept as written'); END;
