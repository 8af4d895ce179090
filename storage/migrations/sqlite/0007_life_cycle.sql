-- 0007_life_cycle: the conversation life-cycle rule in one place, a trigger per dialect
-- (the PostgreSQL migration of the same number explains the rule and why).
--
-- SQLite triggers cannot change NEW, so this AFTER INSERT trigger decides the message's
-- effect and cycle from the conversation as it was (the first UPDATE, on the new row), then
-- applies them. The adaptor inserts a batch row by row in seq order; each row's trigger runs
-- before the next row is inserted.

DROP TRIGGER messages_cycle_start;
DROP TRIGGER messages_first_reply;
DROP TRIGGER messages_reply_claims;

ALTER TABLE messages ADD COLUMN effect text CHECK (effect IN ('opened', 'claimed'));
ALTER TABLE messages ADD COLUMN cycle integer;

CREATE TRIGGER messages_life_cycle AFTER INSERT ON messages
BEGIN
    UPDATE messages
       SET effect = (SELECT CASE
               WHEN NEW.kind = 'text' AND NEW.sender_role = 'relative'
                    AND c.state IN ('new', 'resolved') THEN 'opened'
               WHEN NEW.kind = 'text' AND NEW.sender_role = 'officer'
                    AND c.state = 'waiting' AND c.assigned_officer_id IS NULL THEN 'claimed'
               END FROM conversations c WHERE c.id = NEW.conversation_id),
           cycle = (SELECT c.cycle + (NEW.kind = 'text' AND NEW.sender_role = 'relative'
                                      AND c.state IN ('new', 'resolved'))
                    FROM conversations c WHERE c.id = NEW.conversation_id)
     WHERE id = NEW.id;

    INSERT INTO conversation_cycles (conversation_id, cycle, prison_id, wait_started_at)
    SELECT m.conversation_id, m.cycle, c.prison_id, NEW.created_at
      FROM messages m JOIN conversations c ON c.id = m.conversation_id
     WHERE m.id = NEW.id AND m.effect = 'opened';

    INSERT INTO audit_entries (at, actor_id, action, object_type, object_id, prison_id,
                               before, after)
    SELECT NEW.created_at, NEW.sender_id, 'conversation.claimed', 'conversation',
           c.id, c.prison_id,
           json_object('state', 'waiting', 'officer_id', NULL, 'cycle', c.cycle),
           json_object('state', 'active', 'officer_id', NEW.sender_id, 'cycle', c.cycle,
                       'via', 'reply')
      FROM messages m JOIN conversations c ON c.id = m.conversation_id
     WHERE m.id = NEW.id AND m.effect = 'claimed';

    UPDATE conversation_cycles SET first_reply_at = NEW.created_at
     WHERE NEW.kind = 'text' AND NEW.sender_role = 'officer'
       AND conversation_id = NEW.conversation_id AND first_reply_at IS NULL
       AND cycle = (SELECT cycle FROM conversations
                     WHERE id = NEW.conversation_id AND state IN ('waiting', 'active')
                       AND first_reply_at IS NULL);

    UPDATE conversations
       SET state = CASE (SELECT effect FROM messages WHERE id = NEW.id)
                       WHEN 'opened' THEN 'waiting' WHEN 'claimed' THEN 'active'
                       ELSE state END,
           cycle = (SELECT cycle FROM messages WHERE id = NEW.id),
           wait_started_at = CASE (SELECT effect FROM messages WHERE id = NEW.id)
                                 WHEN 'opened' THEN NEW.created_at ELSE wait_started_at END,
           first_reply_at = CASE
               WHEN (SELECT effect FROM messages WHERE id = NEW.id) = 'opened' THEN NULL
               WHEN NEW.kind = 'text' AND NEW.sender_role = 'officer'
                    AND state IN ('waiting', 'active') AND first_reply_at IS NULL
                    THEN NEW.created_at
               ELSE first_reply_at END,
           assigned_officer_id = CASE (SELECT effect FROM messages WHERE id = NEW.id)
                                     WHEN 'opened' THEN NULL WHEN 'claimed' THEN NEW.sender_id
                                     ELSE assigned_officer_id END,
           handover_note = CASE (SELECT effect FROM messages WHERE id = NEW.id)
                               WHEN 'opened' THEN NULL ELSE handover_note END,
           last_seq = NEW.seq,
           updated_at = NEW.created_at
     WHERE id = NEW.conversation_id;
END;
