-- 0025_keywords: keyword review without censorship.
--
-- The bureau keeps keyword lists per category (categories are rows: the admin adds, renames
-- and removes them, audited `keywords.updated`); `keyword_version` counts the changes, so
-- every server process can tell whether the matcher it compiled is the current one.
-- A message is matched in the server process before it is stored (no extra round trip) and
-- its categories go into `messages.flags` (comma-separated, sorted; NULL: none) in the same
-- statement that appends it: kinline_append takes them as one more array. Flags are for
-- staff review only: they are not part of any relative-facing frame nor of the message hash.
-- `flag_reviews` is the review state: one row per flagged message once an officer or a
-- supervisor marked it reviewed with a note (audited `flag.reviewed` in the same transaction);
-- it keeps the message's conversation too, to reference the message by (id, conversation_id),
-- the key of the partitioned `messages` (0021).

CREATE TABLE keyword_lists (
    category   text PRIMARY KEY,
    label      text NOT NULL DEFAULT '',
    words      jsonb NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE keyword_version (
    id      integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO keyword_version (id, version) VALUES (1, 1);

INSERT INTO keyword_lists (category, label) VALUES
    ('escape', '脱逃'), ('contraband', '违禁品'), ('threats', '威胁'), ('self-harm', '自伤');

ALTER TABLE messages ADD COLUMN flags text;
CREATE INDEX messages_flagged ON messages (id) WHERE flags IS NOT NULL;

CREATE TABLE flag_reviews (
    message_id  bigint PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES conversations (id),  -- the message's
    FOREIGN KEY (message_id, conversation_id) REFERENCES messages (id, conversation_id),
    reviewed_by bigint NOT NULL REFERENCES users (id),
    reviewed_at timestamptz NOT NULL,
    note        text NOT NULL
);

-- kinline_append as 0021 left it (the cid lookup a LATERAL probe, pruned to one partition
-- when the batch is one conversation) with each message's flags: one more array, the same
-- statement. Written out here rather than rewritten from the catalog, as 0021 had to.
DROP FUNCTION kinline_append(bigint[], bigint[], text[], text[], text[], text[]);

CREATE FUNCTION kinline_append(
    p_conv bigint[], p_sender bigint[], p_role text[], p_cid text[], p_kind text[], p_body text[],
    p_flags text[]
) RETURNS TABLE (ord integer, id bigint, conversation_id bigint, seq bigint,
                 created_at timestamptz, created boolean, effect text, cycle integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM conversations c WHERE c.id = ANY (p_conv) ORDER BY c.id FOR UPDATE;
    IF p_conv[1] = ALL (p_conv) THEN  -- one conversation: one partition
    RETURN QUERY
    WITH input AS (
        SELECT t.n::integer AS n, t.conv, t.sender, t.role, t.cid, t.kind, t.body, t.flags
        FROM unnest(p_conv, p_sender, p_role, p_cid, p_kind, p_body, p_flags)
             WITH ORDINALITY AS t(conv, sender, role, cid, kind, body, flags, n)
        WHERE EXISTS (SELECT 1 FROM conversations c WHERE c.id = t.conv)
    ),
    existing AS (
        SELECT i.n, m.id AS mid, m.conversation_id AS conv, m.seq AS mseq, m.created_at AS mat
        FROM input i CROSS JOIN LATERAL (
            SELECT m.* FROM messages m
             WHERE m.conversation_id = i.conv AND m.sender_id = i.sender
               AND m.cid = i.cid AND m.conversation_id = p_conv[1]
             LIMIT 1) m
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
        INSERT INTO messages (conversation_id, seq, sender_id, sender_role, cid, kind, body,
                              flags)
        SELECT nb.conv, nb.nseq, nb.sender, nb.role, nb.cid, nb.kind, nb.body, nb.flags
        FROM numbered nb
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
    ELSE
    RETURN QUERY
    WITH input AS (
        SELECT t.n::integer AS n, t.conv, t.sender, t.role, t.cid, t.kind, t.body, t.flags
        FROM unnest(p_conv, p_sender, p_role, p_cid, p_kind, p_body, p_flags)
             WITH ORDINALITY AS t(conv, sender, role, cid, kind, body, flags, n)
        WHERE EXISTS (SELECT 1 FROM conversations c WHERE c.id = t.conv)
    ),
    existing AS (
        SELECT i.n, m.id AS mid, m.conversation_id AS conv, m.seq AS mseq, m.created_at AS mat
        FROM input i CROSS JOIN LATERAL (
            SELECT m.* FROM messages m
             WHERE m.conversation_id = i.conv AND m.sender_id = i.sender
               AND m.cid = i.cid
             LIMIT 1) m
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
        INSERT INTO messages (conversation_id, seq, sender_id, sender_role, cid, kind, body,
                              flags)
        SELECT nb.conv, nb.nseq, nb.sender, nb.role, nb.cid, nb.kind, nb.body, nb.flags
        FROM numbered nb
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
    END IF;
END $$;

