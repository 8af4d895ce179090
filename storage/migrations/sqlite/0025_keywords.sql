-- 0025_keywords (the PostgreSQL migration of the same number says why). The SQLite append
-- (storage/sqlite.py) writes each message's flags in its INSERT.
CREATE TABLE keyword_lists (
    category   text PRIMARY KEY,
    label      text NOT NULL DEFAULT '',
    words      text NOT NULL DEFAULT '[]',
    updated_at integer NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS integer))
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
    message_id  bigint PRIMARY KEY REFERENCES messages (id),
    conversation_id bigint NOT NULL REFERENCES conversations (id),  -- the message's
    reviewed_by bigint NOT NULL REFERENCES users (id),
    reviewed_at integer NOT NULL,
    note        text NOT NULL
);
