-- 0020_desk_routing (the PostgreSQL migration of the same number says why).
CREATE TABLE desk_settings (
    prison_id        bigint PRIMARY KEY REFERENCES prisons (id),
    auto_assign      text NOT NULL DEFAULT 'off' CHECK (auto_assign IN ('off', 'round_robin')),
    assign_cap       integer NOT NULL DEFAULT 5 CHECK (assign_cap BETWEEN 1 AND 100),
    last_assigned_id bigint REFERENCES users (id),
    away_reply       integer NOT NULL DEFAULT 0,
    desk_hours_zh    text NOT NULL DEFAULT '',
    desk_hours_en    text NOT NULL DEFAULT '',
    updated_at       integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer))
);

CREATE TABLE announcement_comments (
    id              INTEGER PRIMARY KEY,
    announcement_id bigint NOT NULL REFERENCES announcements (id),
    author_id       bigint NOT NULL REFERENCES users (id),
    body            text NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by      bigint REFERENCES users (id),
    decided_at      integer,
    created_at      integer NOT NULL
);
CREATE INDEX announcement_comments_of ON announcement_comments (announcement_id, state, id);
CREATE INDEX announcement_comments_state ON announcement_comments (state, id);
CREATE INDEX announcement_comments_created ON announcement_comments (created_at);
