-- Kinline schema, SQLite (timestamps are integer microseconds since the epoch). Covers the whole product (DESIGN.md); later changes add columns.

CREATE TABLE prisons (
    id                INTEGER PRIMARY KEY,
    code              text NOT NULL UNIQUE,
    name              text NOT NULL,
    city              text NOT NULL DEFAULT '',
    response_target_s integer NOT NULL DEFAULT 300,
    visit_rules       text NOT NULL DEFAULT '{}',
    created_at        integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer))
);

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    role            text NOT NULL CHECK (role IN ('relative', 'officer', 'supervisor', 'admin')),
    login           text NOT NULL UNIQUE,
    name            text NOT NULL,
    password_hash   text NOT NULL,
    phone           text,
    id_number_hash  blob UNIQUE,          -- keyed hash; the national id is never stored in clear
    id_number_last4 text,
    profile         text NOT NULL DEFAULT '{}',   -- supervisors' public title, photo, address, phone
    disabled        integer NOT NULL DEFAULT 0,
    created_at      integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer))
);

-- Staff membership: an officer has one prison, a supervisor one or more.
CREATE TABLE user_prisons (
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    prison_id bigint NOT NULL REFERENCES prisons (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, prison_id)
);

CREATE TABLE sessions (
    id         INTEGER PRIMARY KEY,
    token_hash blob NOT NULL UNIQUE,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer)),
    expires_at integer NOT NULL,
    revoked_at integer
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE inmates (
    id         INTEGER PRIMARY KEY,
    prison_id  bigint NOT NULL REFERENCES prisons (id),
    number     text NOT NULL,
    name       text NOT NULL,
    info       text NOT NULL DEFAULT '{}',   -- activity, work, health, term, balance, visits
    created_at integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer)),
    UNIQUE (prison_id, number)
);

CREATE TABLE family_links (
    id           INTEGER PRIMARY KEY,
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
    decided_at   integer,
    created_at   integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer))
);
CREATE INDEX family_links_inmate ON family_links (inmate_id, state);
CREATE UNIQUE INDEX family_links_one_open ON family_links (relative_id, inmate_id)
    WHERE state IN ('pending', 'verified');

CREATE TABLE conversations (
    id                  INTEGER PRIMARY KEY,
    prison_id           bigint NOT NULL REFERENCES prisons (id),
    inmate_id           bigint NOT NULL REFERENCES inmates (id),
    relative_id         bigint NOT NULL REFERENCES users (id),
    state               text NOT NULL DEFAULT 'new'
                        CHECK (state IN ('new', 'waiting', 'active', 'resolved')),
    assigned_officer_id bigint REFERENCES users (id),
    last_seq            bigint NOT NULL DEFAULT 0,
    cycle               integer NOT NULL DEFAULT 0,
    wait_started_at     integer,   -- current cycle: when the relative started waiting
    first_reply_at      integer,   -- current cycle: first staff answer
    created_at          integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer)),
    updated_at          integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer)),
    UNIQUE (relative_id, inmate_id)
);
CREATE INDEX conversations_queue ON conversations (prison_id, state, wait_started_at);

-- One row per answered-question cycle: what supervisors read as response times.
CREATE TABLE conversation_cycles (
    conversation_id bigint NOT NULL REFERENCES conversations (id),
    cycle           integer NOT NULL,
    prison_id       bigint NOT NULL REFERENCES prisons (id),
    wait_started_at integer NOT NULL,
    first_reply_at  integer,
    resolved_at     integer,
    resolved_by     bigint REFERENCES users (id),
    rating          smallint CHECK (rating BETWEEN 1 AND 5),
    rating_comment  text,
    PRIMARY KEY (conversation_id, cycle)
);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES conversations (id),
    seq             bigint NOT NULL,
    sender_id       bigint NOT NULL REFERENCES users (id),
    sender_role     text NOT NULL,
    cid             text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('text', 'note', 'system')),
    body            text NOT NULL,
    created_at      integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer)),
    UNIQUE (conversation_id, seq),
    UNIQUE (conversation_id, sender_id, cid)
);

CREATE TABLE read_cursors (
    conversation_id bigint NOT NULL REFERENCES conversations (id),
    user_id         bigint NOT NULL REFERENCES users (id),
    seq             bigint NOT NULL,
    updated_at      integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer)),
    PRIMARY KEY (conversation_id, user_id)
);

CREATE TABLE duty (
    user_id   bigint NOT NULL REFERENCES users (id),
    prison_id bigint NOT NULL REFERENCES prisons (id),
    on_duty   integer NOT NULL,
    since     integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer)),
    PRIMARY KEY (user_id, prison_id)
);

CREATE TABLE canned_replies (
    id         INTEGER PRIMARY KEY,
    prison_id  bigint NOT NULL REFERENCES prisons (id),
    short_name text NOT NULL,
    body       text NOT NULL,
    UNIQUE (prison_id, short_name)
);

CREATE TABLE visit_requests (
    id          INTEGER PRIMARY KEY,
    inmate_id   bigint NOT NULL REFERENCES inmates (id),
    relative_id bigint NOT NULL REFERENCES users (id),
    slot_start  integer NOT NULL,
    visitors    integer NOT NULL,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'approved', 'declined', 'cancelled')),
    reason      text,
    decided_by  bigint REFERENCES users (id),
    created_at  integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer))
);

CREATE TABLE complaints (
    id              INTEGER PRIMARY KEY,
    reference       text NOT NULL UNIQUE,
    prison_id       bigint NOT NULL REFERENCES prisons (id),
    complainant_id  bigint NOT NULL REFERENCES users (id),
    inmate_id       bigint REFERENCES inmates (id),
    conversation_id bigint REFERENCES conversations (id),
    category        text NOT NULL,
    body            text NOT NULL,
    state           text NOT NULL DEFAULT 'received'
                    CHECK (state IN ('received', 'in_review', 'answered', 'closed', 'escalated')),
    deadline        integer NOT NULL,
    created_at      integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer))
);

CREATE TABLE complaint_events (
    id           INTEGER PRIMARY KEY,
    complaint_id bigint NOT NULL REFERENCES complaints (id),
    actor_id     bigint NOT NULL REFERENCES users (id),
    state        text NOT NULL,
    message      text NOT NULL,
    created_at   integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer))
);

CREATE TABLE announcements (
    id         INTEGER PRIMARY KEY,
    prison_id  bigint REFERENCES prisons (id),   -- NULL: bureau-wide
    author_id  bigint NOT NULL REFERENCES users (id),
    title      text NOT NULL,
    body       text NOT NULL,
    open_day   text,
    created_at integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer))
);

CREATE TABLE audit_entries (
    id          INTEGER PRIMARY KEY,
    at          integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer)),
    actor_id    bigint REFERENCES users (id),
    action      text NOT NULL,
    object_type text NOT NULL,
    object_id   bigint,
    prison_id   bigint REFERENCES prisons (id),
    before      text,
    after       text
);
CREATE INDEX audit_entries_prison ON audit_entries (prison_id, at);

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
