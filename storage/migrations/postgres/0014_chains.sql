-- 0014_chains: the tamper-evident record (DESIGN.md section 9; the forms: domain/chain.py).
--
-- * Every message gets its hash in the statement that stores it: the life-cycle trigger,
--   which already reads and updates the conversation row kinline_append has locked, sets
--   messages.hash = sha256(conversations.chain_head || C(m)) and moves chain_head to it. No
--   statement and no round trip is added to the append.
-- * Every audit entry gets its hash as it is inserted (whoever inserts it: a Python area or
--   the life-cycle trigger's claim): a BEFORE INSERT trigger moves the one audit_chain row,
--   whose row lock orders the chain (chain_n) across concurrent transactions until commit.
-- * A message is kept as written: an UPDATE of what its hash covers, or a DELETE, is refused
--   (messages_kept), except retention emptying its text (storage/retention.py). A database
--   owner can still disable triggers: the chains and the anchors tell what it changed.
-- * chain_anchors keeps each day's digest of every head (storage/chain_anchors.py).
-- Rows stored before this migration are chained here, in (conversation, seq) and id order.

CREATE FUNCTION kinline_at_us(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (extract(epoch FROM t) * 1000000)::bigint  -- numeric: exact to the microsecond
$$;

-- JSON text equal to Python's json.dumps(v, ensure_ascii=False, sort_keys=True,
-- separators=(",", ":")): to_json(text) escapes exactly what Python does (", \, \b \f \n \r
-- \t and \u00xx for other control characters); keys sort by code point (COLLATE "C" on UTF-8).
CREATE FUNCTION kinline_json(v jsonb) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    CASE jsonb_typeof(v)
    WHEN 'object' THEN
        RETURN '{' || COALESCE((SELECT string_agg(to_json(k)::text || ':' || kinline_json(v -> k),
                                                   ',' ORDER BY k COLLATE "C")
                                  FROM jsonb_object_keys(v) AS k), '') || '}';
    WHEN 'array' THEN
        RETURN '[' || COALESCE((SELECT string_agg(kinline_json(e), ',' ORDER BY n)
                                  FROM jsonb_array_elements(v) WITH ORDINALITY AS t(e, n)),
                               '') || ']';
    WHEN 'string' THEN
        RETURN to_json(v #>> '{}')::text;
    ELSE
        RETURN COALESCE(v::text, 'null');  -- numbers, true, false, null; SQL NULL as null
    END CASE;
END $$;

-- C(m): the message's canonical form (attachments: hex sha256 of each file, when any)
CREATE FUNCTION kinline_message_form(
    at_us bigint, body text, conv bigint, kind text, sender bigint, seq bigint,
    attachments text[] DEFAULT NULL
) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT convert_to(
        '{"at_us":' || at_us
        || CASE WHEN cardinality(attachments) > 0
                THEN ',"attachments":' || lower(kinline_json(to_jsonb(attachments)))  -- hex
                ELSE '' END
        || ',"body":' || to_json(body)::text
        || ',"conv":' || conv
        || ',"kind":' || to_json(kind)::text
        || ',"sender":' || sender
        || ',"seq":' || seq || '}',
        'UTF8')
$$;

-- A(e): the audit entry's canonical form
CREATE FUNCTION kinline_audit_form(e audit_entries) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to(
        '{"action":' || to_json(e.action)::text
        || ',"actor_id":' || COALESCE(e.actor_id::text, 'null')
        || ',"after":' || kinline_json(e.after)
        || ',"at_us":' || kinline_at_us(e.at)
        || ',"before":' || kinline_json(e.before)
        || ',"id":' || e.id
        || ',"object_id":' || COALESCE(e.object_id::text, 'null')
        || ',"object_type":' || to_json(e.object_type)::text
        || ',"prison_id":' || COALESCE(e.prison_id::text, 'null') || '}',
        'UTF8')
$$;

ALTER TABLE conversations ADD COLUMN chain_head bytea NOT NULL
    DEFAULT decode(repeat('00', 32), 'hex');
ALTER TABLE messages ADD COLUMN hash bytea;
ALTER TABLE audit_entries ADD COLUMN chain_n bigint UNIQUE;
ALTER TABLE audit_entries ADD COLUMN hash bytea;

CREATE TABLE audit_chain (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    n    bigint NOT NULL,  -- entries chained so far: the chain_n of the last
    head bytea NOT NULL
);

-- chain what is already stored
DO $$
DECLARE
    m record;
    e audit_entries%ROWTYPE;
    head bytea;
    conv bigint := NULL;
    n bigint := 0;
BEGIN
    FOR m IN SELECT * FROM messages ORDER BY conversation_id, seq LOOP
        IF conv IS DISTINCT FROM m.conversation_id THEN
            conv := m.conversation_id;
            head := decode(repeat('00', 32), 'hex');
        END IF;
        head := sha256(head || kinline_message_form(kinline_at_us(m.created_at), m.body,
                                                     m.conversation_id, m.kind, m.sender_id,
                                                     m.seq));
        UPDATE messages SET hash = head WHERE id = m.id;
        UPDATE conversations SET chain_head = head WHERE id = m.conversation_id;
    END LOOP;

    ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only;
    head := decode(repeat('00', 32), 'hex');
    FOR e IN SELECT * FROM audit_entries ORDER BY id LOOP
        n := n + 1;
        head := sha256(head || kinline_audit_form(e));
        UPDATE audit_entries SET chain_n = n, hash = head WHERE id = e.id;
    END LOOP;
    ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only;
    INSERT INTO audit_chain (n, head) VALUES (n, head);
END $$;

-- messages.hash stays nullable: a bulk load with triggers off (bench/search.py) stores rows
-- outside the chains, and kinline verify names the first of them.
ALTER TABLE audit_entries ALTER COLUMN hash SET NOT NULL;
ALTER TABLE audit_entries ALTER COLUMN chain_n SET NOT NULL;

-- (an upsert: a truncated audit_chain starts again from h_0)
CREATE FUNCTION kinline_audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    form bytea := kinline_audit_form(NEW);
BEGIN
    INSERT INTO audit_chain AS a (n, head)
    VALUES (1, sha256(decode(repeat('00', 32), 'hex') || form))
    ON CONFLICT (one) DO UPDATE SET n = a.n + 1, head = sha256(a.head || form)
    RETURNING a.n, a.head INTO NEW.chain_n, NEW.hash;
    RETURN NEW;
END $$;

CREATE TRIGGER audit_entries_chain BEFORE INSERT ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION kinline_audit_chain();

-- 0007's life-cycle rule, unchanged, plus the message's link (marked "chain")
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
        NEW.seq));
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

-- each day's anchor: the digest of every head, and the positions it covers, kept for good
CREATE TABLE chain_anchors (
    day     date PRIMARY KEY,
    digest  bytea NOT NULL,
    heads   jsonb NOT NULL,   -- {"<conversation id>": <seq of its head>}
    audit_n bigint NOT NULL,  -- the audit entries covered (chain_n of the head)
    at      timestamptz NOT NULL
);

CREATE FUNCTION chain_anchors_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'anchors are kept as published';
END $$;
CREATE TRIGGER chain_anchors_kept BEFORE UPDATE OR DELETE ON chain_anchors
    FOR EACH ROW EXECUTE FUNCTION chain_anchors_kept();

CREATE FUNCTION messages_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.purged_at IS NULL AND NEW.purged_at IS NOT NULL
       AND NEW.body = ''
       AND (NEW.conversation_id, NEW.seq, NEW.sender_id, NEW.kind, NEW.created_at, NEW.hash)
           IS NOT DISTINCT FROM
           (OLD.conversation_id, OLD.seq, OLD.sender_id, OLD.kind, OLD.created_at, OLD.hash)
    THEN
        RETURN NEW;  -- retention empties the text; the place and the hash stay
    END IF;
    RAISE EXCEPTION 'messages are kept as written';
END $$;
CREATE TRIGGER messages_kept
    BEFORE UPDATE OF conversation_id, seq, sender_id, kind, body, created_at, hash, purged_at
    OR DELETE ON messages FOR EACH ROW EXECUTE FUNCTION messages_kept();
