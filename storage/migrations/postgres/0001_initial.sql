-- Kinline schema, PostgreSQL. Covers the whole product (DESIGN.md); later changes add columns.

CREATE TABLE prisons (
    id                bigserial PRIMARY KEY,
    code              text NOT NULL UNIQUE,
    name              text NOT NULL,
    city              text NOT NULL DEFAULT '',
    response_target_s integer NOT NULL DEFAULT 300,
    visit_rules       jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id              bigserial PRIMARY KEY,
    role            text NOT NULL CHECK (role IN ('relative', 'officer', 'supervisor', 'admin')),
    login           text NOT NULL UNIQUE,
    name            text NOT NULL,
    password_hash   text NOT NULL,
    phone           text,
    id_number_hash  bytea UNIQUE,          -- keyed hash; the national id is never stored in clear
    id_number_last4 text,
    profile         jsonb NOT NULL DEFAULT '{}',   -- supervisors' public title, photo, address, phone
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Staff membership: an officer has one prison, a supervisor one or more.
CREATE TABLE user_prisons (
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    prison_id bigint NOT NULL REFERENCES prisons (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, prison_id)
);

CREATE TABLE sessions (
    id         bigserial PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE inmates (
    id         bigserial PRIMARY KEY,
    prison_id  bigint NOT NULL REFERENCES prisons (id),
    number     text NOT NULL,
    name       text NOT NULL,
    info       jsonb NOT NULL DEFAULT '{}',   -- activity, work, health, term, balance, visits
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (prison_id, number)
);

CREATE TABLE family_links (
    id           bigserial PRIMARY KEY,
    relative_id  bigint NOT NULL REFERENCES users (id),
    -- what the relative claimed; inmate_id is set only when it names a real inmate, so the
    -- answer to a request never reveals whether an inmate exists
    prison_id    bigint REFERENCES prisons (id),
    inmate_number text NOT NULL DEFAULT '',
    inmate_id    bigint REFERENCES inmates (id),
    relationship text NOT NULL,
    evidence     text NOT NULL DEFAULT '',
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'verified', 'rejected', 'revoked')),
    reason       text,
    decided_by   bigint REFERENCES users (id),
    decided_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX family_links_inmate ON family_links (inmate_id, state);
CREATE UNIQUE INDEX family_links_one_open ON family_links (relative_id, inmate_id)
    WHERE state IN ('pending', 'verified');

CREATE TABLE conversations (
    id                  bigserial PRIMARY KEY,
    prison_id           bigint NOT NULL REFERENCES prisons (id),
    inmate_id           bigint NOT NULL REFERENCES inmates (id),
    relative_id         bigint NOT NULL REFERENCES users (id),
    state               text NOT NULL DEFAULT 'new'
                        CHECK (state IN ('new', 'waiting', 'active', 'resolved')),
    assigned_officer_id bigint REFERENCES users (id),
    last_seq            bigint NOT NULL DEFAULT 0,
    cycle               integer NOT NULL DEFAULT 0,
    wait_started_at     timestamptz,   -- current cycle: when the relative started waiting
    first_reply_at      timestamptz,   -- current cycle: first staff answer
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (relative_id, inmate_id)
);
CREATE INDEX conversations_queue ON conversations (prison_id, state, wait_started_at);

-- One row per answered-question cycle: what supervisors read as response times.
CREATE TABLE conversation_cycles (
    conversation_id bigint NOT NULL REFERENCES conversations (id),
    cycle           integer NOT NULL,
    prison_id       bigint NOT NULL REFERENCES prisons (id),
    wait_started_at timestamptz NOT NULL,
    first_reply_at  timestamptz,
    resolved_at     timestamptz,
    resolved_by     bigint REFERENCES users (id),
    rating          smallint CHECK (rating BETWEEN 1 AND 5),
    rating_comment  text,
    PRIMARY KEY (conversation_id, cycle)
);

CREATE TABLE messages (
    id              bigserial PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES conversations (id),
    seq             bigint NOT NULL,
    sender_id       bigint NOT NULL REFERENCES users (id),
    sender_role     text NOT NULL,
    cid             text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('text', 'note', 'system')),
    body            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, seq),
    UNIQUE (conversation_id, sender_id, cid)
);

CREATE TABLE read_cursors (
    conversation_id bigint NOT NULL REFERENCES conversations (id),
    user_id         bigint NOT NULL REFERENCES users (id),
    seq             bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, user_id)
);

CREATE TABLE duty (
    user_id   bigint NOT NULL REFERENCES users (id),
    prison_id bigint NOT NULL REFERENCES prisons (id),
    on_duty   boolean NOT NULL,
    since     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, prison_id)
);

CREATE TABLE canned_replies (
    id         bigserial PRIMARY KEY,
    prison_id  bigint NOT NULL REFERENCES prisons (id),
    short_name text NOT NULL,
    body       text NOT NULL,
    UNIQUE (prison_id, short_name)
);

CREATE TABLE visit_requests (
    id          bigserial PRIMARY KEY,
    inmate_id   bigint NOT NULL REFERENCES inmates (id),
    relative_id bigint NOT NULL REFERENCES users (id),
    slot_start  timestamptz NOT NULL,
    visitors    integer NOT NULL,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'approved', 'declined', 'cancelled')),
    reason      text,
    decided_by  bigint REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE complaints (
    id              bigserial PRIMARY KEY,
    reference       text NOT NULL UNIQUE,
    prison_id       bigint NOT NULL REFERENCES prisons (id),
    complainant_id  bigint NOT NULL REFERENCES users (id),
    inmate_id       bigint REFERENCES inmates (id),
    conversation_id bigint REFERENCES conversations (id),
    category        text NOT NULL,
    body            text NOT NULL,
    state           text NOT NULL DEFAULT 'received'
                    CHECK (state IN ('received', 'in_review', 'answered', 'closed', 'escalated')),
    deadline        timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE complaint_events (
    id           bigserial PRIMARY KEY,
    complaint_id bigint NOT NULL REFERENCES complaints (id),
    actor_id     bigint NOT NULL REFERENCES users (id),
    state        text NOT NULL,
    message      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE announcements (
    id         bigserial PRIMARY KEY,
    prison_id  bigint REFERENCES prisons (id),   -- NULL: bureau-wide
    author_id  bigint NOT NULL REFERENCES users (id),
    title      text NOT NULL,
    body       text NOT NULL,
    open_day   date,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_entries (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    bigint REFERENCES users (id),
    action      text NOT NULL,
    object_type text NOT NULL,
    object_id   bigint,
    prison_id   bigint REFERENCES prisons (id),
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_entries_prison ON audit_entries (prison_id, at);

CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only';
END $$;
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();

-- Append a batch of messages in one statement (one round trip), atomically:
-- lock the batch's conversations in id order, return what is already stored under each
-- (conversation, sender, cid), and give each new message the next seq of its conversation.
-- Each statement of a plpgsql function takes a fresh snapshot, so the lookups after the lock
-- see everything committed by whoever held the lock before.
CREATE FUNCTION kinline_append(
    p_conv bigint[], p_sender bigint[], p_role text[], p_cid text[], p_kind text[], p_body text[]
) RETURNS TABLE (ord integer, id bigint, conversation_id bigint, seq bigint,
                 created_at timestamptz, created boolean)
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
        RETURNING messages.id AS mid, messages.conversation_id AS conv, messages.seq AS mseq,
                  messages.created_at AS mat
    ),
    bumped AS (
        UPDATE conversations c SET last_seq = b.top, updated_at = now()
        FROM (SELECT nb.conv, max(nb.nseq) AS top FROM numbered nb GROUP BY nb.conv) b
        WHERE c.id = b.conv
    )
    SELECT nb.n, ins.mid, ins.conv, ins.mseq, ins.mat, true
    FROM inserted ins JOIN numbered nb ON nb.conv = ins.conv AND nb.nseq = ins.mseq
    UNION ALL
    SELECT e.n, e.mid, e.conv, e.mseq, e.mat, false FROM existing e;
END $$;
