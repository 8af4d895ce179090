-- 0020_desk_routing: a prison's desk settings (auto-assignment, the reply when nobody is on
-- duty, its desk hours) and relatives' comments on announcements (issue 16).
--
-- desk_settings: one row per prison that changed a default (no row: auto-assignment off, no
-- away reply). last_assigned_id is where round robin stands; the row is locked by every
-- assignment (storage/routing.py), so processes assigning in the same prison take turns.
CREATE TABLE desk_settings (
    prison_id        bigint PRIMARY KEY REFERENCES prisons (id),
    auto_assign      text NOT NULL DEFAULT 'off' CHECK (auto_assign IN ('off', 'round_robin')),
    assign_cap       integer NOT NULL DEFAULT 5 CHECK (assign_cap BETWEEN 1 AND 100),
    last_assigned_id bigint REFERENCES users (id),
    away_reply       boolean NOT NULL DEFAULT false,
    desk_hours_zh    text NOT NULL DEFAULT '',
    desk_hours_en    text NOT NULL DEFAULT '',
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- A comment is shown to others only once approved by an officer of the announcement's
-- prison or the admin (storage/comments.py).
CREATE TABLE announcement_comments (
    id              bigserial PRIMARY KEY,
    announcement_id bigint NOT NULL REFERENCES announcements (id),
    author_id       bigint NOT NULL REFERENCES users (id),
    body            text NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by      bigint REFERENCES users (id),
    decided_at      timestamptz,
    created_at      timestamptz NOT NULL
);
CREATE INDEX announcement_comments_of ON announcement_comments (announcement_id, state, id);
CREATE INDEX announcement_comments_state ON announcement_comments (state, id);
CREATE INDEX announcement_comments_created ON announcement_comments (created_at);
