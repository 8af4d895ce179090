-- 0003_desk: the duty desk (issue 5): conversation life cycle, hand-over notes.
--
-- The life cycle is kept by triggers on messages, so it commits in the transaction that
-- stores the message (a question can never be stored without starting its cycle, whoever
-- inserts it):
-- * a relative's text message while the thread is new or resolved starts a cycle:
--   cycle + 1, state waiting, wait_started_at = the message's created_at, first_reply_at and
--   assigned_officer_id cleared, and a conversation_cycles row;
-- * the first text message of an officer in an open cycle (waiting or active; not one sent
--   after the question was resolved without a text answer) is its first response
--   (conversations.first_reply_at and conversation_cycles.first_reply_at);
-- * an officer's text message in a waiting thread nobody holds claims it (active, held by
--   that officer), audited as a claim "via reply".
-- Notes and system messages never count. kinline_append inserts a batch in one statement;
-- AFTER ROW triggers fire at the end of that statement, in the order the rows were inserted,
-- which kinline_append makes the seq order.

ALTER TABLE conversations ADD COLUMN handover_note text;  -- last transfer's note (staff only)
CREATE INDEX conversations_relative ON conversations (relative_id, updated_at);
CREATE INDEX duty_user ON duty (user_id);

CREATE FUNCTION kinline_cycle_start() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    started_cycle integer;
    started_prison bigint;
BEGIN
    UPDATE conversations c
       SET state = 'waiting', cycle = c.cycle + 1, wait_started_at = NEW.created_at,
           first_reply_at = NULL, assigned_officer_id = NULL, handover_note = NULL
     WHERE c.id = NEW.conversation_id AND c.state IN ('new', 'resolved')
    RETURNING c.cycle, c.prison_id INTO started_cycle, started_prison;
    IF FOUND THEN
        INSERT INTO conversation_cycles (conversation_id, cycle, prison_id, wait_started_at)
        VALUES (NEW.conversation_id, started_cycle, started_prison, NEW.created_at);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER messages_cycle_start AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.kind = 'text' AND NEW.sender_role = 'relative')
    EXECUTE FUNCTION kinline_cycle_start();

CREATE FUNCTION kinline_first_reply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    answered integer;
BEGIN
    UPDATE conversations c SET first_reply_at = NEW.created_at
     WHERE c.id = NEW.conversation_id AND c.state IN ('waiting', 'active')
       AND c.first_reply_at IS NULL
    RETURNING c.cycle INTO answered;
    IF FOUND THEN
        UPDATE conversation_cycles SET first_reply_at = NEW.created_at
         WHERE conversation_id = NEW.conversation_id AND cycle = answered
           AND first_reply_at IS NULL;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER messages_first_reply AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.kind = 'text' AND NEW.sender_role = 'officer')
    EXECUTE FUNCTION kinline_first_reply();

-- An officer answering a waiting question nobody holds takes it (claims it, audited as a
-- claim "via reply"), so an answered question never stays in the queue for a colleague to
-- answer twice.
CREATE FUNCTION kinline_reply_claims() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    claimed_cycle integer;
    claimed_prison bigint;
BEGIN
    UPDATE conversations c SET state = 'active', assigned_officer_id = NEW.sender_id
     WHERE c.id = NEW.conversation_id AND c.state = 'waiting' AND c.assigned_officer_id IS NULL
    RETURNING c.cycle, c.prison_id INTO claimed_cycle, claimed_prison;
    IF FOUND THEN
        INSERT INTO audit_entries (at, actor_id, action, object_type, object_id, prison_id,
                                   before, after)
        VALUES (NEW.created_at, NEW.sender_id, 'conversation.claimed', 'conversation',
                NEW.conversation_id, claimed_prison,
                jsonb_build_object('state', 'waiting', 'officer_id', NULL,
                                   'cycle', claimed_cycle),
                jsonb_build_object('state', 'active', 'officer_id', NEW.sender_id,
                                   'cycle', claimed_cycle, 'via', 'reply'));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER messages_reply_claims AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.kind = 'text' AND NEW.sender_role = 'officer')
    EXECUTE FUNCTION kinline_reply_claims();

-- kinline_append (0001), now also returning each conversation's state and cycle before the
-- batch (prev_state, prev_cycle; NULL for messages already stored), read under the same lock,
-- so the send path can tell a cycle start without another round trip; and inserting in seq
-- order, the order the triggers above must see.
DROP FUNCTION kinline_append(bigint[], bigint[], text[], text[], text[], text[]);

CREATE FUNCTION kinline_append(
    p_conv bigint[], p_sender bigint[], p_role text[], p_cid text[], p_kind text[], p_body text[]
) RETURNS TABLE (ord integer, id bigint, conversation_id bigint, seq bigint,
                 created_at timestamptz, created boolean, prev_state text, prev_cycle integer)
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
        SELECT f.*, c.last_seq + row_number() OVER (PARTITION BY f.conv ORDER BY f.n) AS nseq,
               c.state AS pstate, c.cycle AS pcycle
        FROM fresh f JOIN conversations c ON c.id = f.conv
    ),
    inserted AS (
        INSERT INTO messages (conversation_id, seq, sender_id, sender_role, cid, kind, body)
        SELECT nb.conv, nb.nseq, nb.sender, nb.role, nb.cid, nb.kind, nb.body FROM numbered nb
        ORDER BY nb.conv, nb.nseq
        RETURNING messages.id AS mid, messages.conversation_id AS conv, messages.seq AS mseq,
                  messages.created_at AS mat
    ),
    bumped AS (
        UPDATE conversations c SET last_seq = b.top, updated_at = now()
        FROM (SELECT nb.conv, max(nb.nseq) AS top FROM numbered nb GROUP BY nb.conv) b
        WHERE c.id = b.conv
    )
    SELECT nb.n, ins.mid, ins.conv, ins.mseq, ins.mat, true, nb.pstate, nb.pcycle
    FROM inserted ins JOIN numbered nb ON nb.conv = ins.conv AND nb.nseq = ins.mseq
    UNION ALL
    SELECT e.n, e.mid, e.conv, e.mseq, e.mat, false, NULL::text, NULL::integer
    FROM existing e;
END $$;
