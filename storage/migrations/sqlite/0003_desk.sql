-- 0003_desk: the duty desk (issue 5): conversation life cycle, hand-over notes.
--
-- The life cycle is kept by triggers on messages, so it commits in the transaction that
-- stores the message, whoever inserts it (same rules as the PostgreSQL migration):
-- a relative's text message while the thread is new or resolved starts a cycle, and the
-- first text message of an officer in an open cycle (waiting or active) is its first
-- response; an officer's
-- text in a waiting thread nobody holds claims it.
-- Notes and system messages never count. SqliteStore inserts a batch row by row in seq
-- order, and each row's trigger runs before the next row is inserted.

ALTER TABLE conversations ADD COLUMN handover_note text;
CREATE INDEX conversations_relative ON conversations (relative_id, updated_at);
CREATE INDEX duty_user ON duty (user_id);

CREATE TRIGGER messages_cycle_start AFTER INSERT ON messages
WHEN NEW.kind = 'text' AND NEW.sender_role = 'relative'
BEGIN
    INSERT INTO conversation_cycles (conversation_id, cycle, prison_id, wait_started_at)
    SELECT id, cycle + 1, prison_id, NEW.created_at FROM conversations
    WHERE id = NEW.conversation_id AND state IN ('new', 'resolved');
    UPDATE conversations
       SET state = 'waiting', cycle = cycle + 1, wait_started_at = NEW.created_at,
           first_reply_at = NULL, assigned_officer_id = NULL, handover_note = NULL
     WHERE id = NEW.conversation_id AND state IN ('new', 'resolved');
END;

CREATE TRIGGER messages_first_reply AFTER INSERT ON messages
WHEN NEW.kind = 'text' AND NEW.sender_role = 'officer'
BEGIN
    UPDATE conversation_cycles SET first_reply_at = NEW.created_at
     WHERE conversation_id = NEW.conversation_id AND first_reply_at IS NULL
       AND cycle = (SELECT cycle FROM conversations
                    WHERE id = NEW.conversation_id AND state IN ('waiting', 'active')
                      AND first_reply_at IS NULL);
    UPDATE conversations SET first_reply_at = NEW.created_at
     WHERE id = NEW.conversation_id AND state IN ('waiting', 'active')
       AND first_reply_at IS NULL;
END;

-- An officer answering a waiting question nobody holds takes it (claims it, audited as a
-- claim "via reply"), so an answered question never stays in the queue for a colleague to
-- answer twice.
CREATE TRIGGER messages_reply_claims AFTER INSERT ON messages
WHEN NEW.kind = 'text' AND NEW.sender_role = 'officer'
BEGIN
    INSERT INTO audit_entries (at, actor_id, action, object_type, object_id, prison_id,
                               before, after)
    SELECT NEW.created_at, NEW.sender_id, 'conversation.claimed', 'conversation', id,
           prison_id,
           json_object('state', 'waiting', 'officer_id', NULL, 'cycle', cycle),
           json_object('state', 'active', 'officer_id', NEW.sender_id, 'cycle', cycle,
                       'via', 'reply')
      FROM conversations
     WHERE id = NEW.conversation_id AND state = 'waiting' AND assigned_officer_id IS NULL;
    UPDATE conversations SET state = 'active', assigned_officer_id = NEW.sender_id
     WHERE id = NEW.conversation_id AND state = 'waiting' AND assigned_officer_id IS NULL;
END;
