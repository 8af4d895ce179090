-- 0007_life_cycle: the conversation life-cycle rule in one place, a trigger per dialect.
--
-- Until now the rule was written three times: 0003's triggers here, the same in SQLite, and
-- Python that re-derived from the state before a batch what the triggers had done, so the
-- send path could announce it. Now one BEFORE INSERT trigger applies the rule to each new
-- message, in seq order, and writes what it did on the message itself: `effect` ('opened'
-- a question cycle, 'claimed' the thread, or NULL) and `cycle` (the question cycle the
-- message belongs to). kinline_append returns both with the rows, so the send path learns
-- the outcome in the append's own round trip, from the database that decided it.
--
-- The rule, for a text message (notes and system messages only move last_seq):
-- * a relative's text while the thread is new or resolved opens a cycle: cycle + 1, state
--   waiting, wait_started_at = the message's time, first_reply_at, the holder and the
--   hand-over note cleared, and a conversation_cycles row;
-- * an officer's first text in an open cycle (waiting or active) is its first response
--   (conversations.first_reply_at and conversation_cycles.first_reply_at);
-- * an officer's text in a waiting thread nobody holds claims it (active, held by that
--   officer), audited as a claim "via reply".
-- The trigger also moves last_seq, so a row's seq and its conversation's last_seq never
-- disagree, whoever inserts the row.

DROP TRIGGER messages_cycle_start ON messages;
DROP TRIGGER messages_first_reply ON messages;
DROP TRIGGER messages_reply_claims ON messages;
DROP FUNCTION kinline_cycle_start();
DROP FUNCTION kinline_first_reply();
DROP FUNCTION kinline_reply_claims();
DROP FUNCTION kinline_append(bigint[], bigint[], text[], text[], text[], text[]);

ALTER TABLE messages ADD COLUMN effect text CHECK (effect IN ('opened', 'claimed'));
ALTER TABLE messages ADD COLUMN cycle integer;

CREATE FUNCTION kinline_life_cycle() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c conversations%ROWTYPE;
    texted boolean := NEW.kind = 'text';
BEGIN
    SELECT * INTO c FROM conversations WHERE id = NEW.conversation_id;
    NEW.cycle := c.cycle;
    IF texted AND NEW.sender_role = 'relative' AND c.state IN ('new', 'resolved') THEN
        NEW.effect := 'opened';
        NEW.cycle := c.cycle + 1;
        UPDATE conversations
           SET state = 'waiting', cycle = NEW.cycle, wait_started_at = NEW.created_at,
               first_reply_at = NULL, assigned_officer_id = NULL, handover_note = NULL,
               last_seq = NEW.seq, updated_at = NEW.created_at
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
               last_seq = NEW.seq, updated_at = NEW.created_at
         WHERE id = NEW.conversation_id;
    ELSE
        UPDATE conversations SET last_seq = NEW.seq, updated_at = NEW.created_at
         WHERE id = NEW.conversation_id;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER messages_life_cycle BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION kinline_life_cycle();

-- The batch append: lock the conversations (in id order: no deadlock between appenders),
-- return what is already stored under a (conversation, sender, cid), number the rest after
-- last_seq in batch order and insert them in that (seq) order, the order the trigger must
-- see. One statement: one round trip, atomic.
CREATE FUNCTION kinline_append(
    p_conv bigint[], p_sender bigint[], p_role text[], p_cid text[], p_kind text[], p_body text[]
) RETURNS TABLE (ord integer, id bigint, conversation_id bigint, seq bigint,
                 created_at timestamptz, created boolean, effect text, cycle integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM conversations c WHERE c.id = ANY (p_conv) ORDER BY c.id FOR UPDATE;
    RETURN QUERY
    WITH input AS (
        SELECT t.n::integer AS n, t.conv, t.sender, t.role, t.cid, t.kind, t.body
        FROM unnest(p_conv, p_sender, p_role, p_cid, p_kind, p_body)
             WITH ORDINALITY AS t(conv, sender, role, cid, kind, body, n)
        WHERE EXISTS (SELECT 1 FROM conversations c WHERE c.id = t.conv)
    ),
    existing AS (
        SELECT i.n, m.id AS mid, m.conversation_id AS conv, m.seq AS mseq, m.created_at AS mat
        FROM input i JOIN messages m
          ON m.conversation_id = i.conv AND m.sender_id = i.sender AND m.cid = i.cid
    ),
    fresh AS (
        SELECT DISTINCT ON (i.conv, i.sender, i.cid) i.*
        FROM input i
        WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE e.n = i.n)
        ORDER BY i.conv, i.sender, i.cid, i.n
    ),
    numbered AS (
        SELECT f.*, c.last_seq + row_number() OVER (PARTITION BY f.conv ORDER BY f.n) AS nseq
        FROM fresh f JOIN conversations c ON c.id = f.conv
    ),
    inserted AS (
        INSERT INTO messages (conversation_id, seq, sender_id, sender_role, cid, kind, body)
        SELECT nb.conv, nb.nseq, nb.sender, nb.role, nb.cid, nb.kind, nb.body FROM numbered nb
        ORDER BY nb.conv, nb.nseq
        RETURNING messages.id AS mid, messages.conversation_id AS conv, messages.seq AS mseq,
                  messages.created_at AS mat, messages.effect AS meffect,
                  messages.cycle AS mcycle
    )
    SELECT nb.n, ins.mid, ins.conv, ins.mseq, ins.mat, true, ins.meffect, ins.mcycle
    FROM inserted ins JOIN numbered nb ON nb.conv = ins.conv AND nb.nseq = ins.mseq
    UNION ALL
    SELECT e.n, e.mid, e.conv, e.mseq, e.mat, false, NULL::text, NULL::integer
    FROM existing e;
END $$;
