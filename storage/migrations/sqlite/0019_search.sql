-- 0019_search: finding any message again (issue 18); the PostgreSQL migration of the same
-- number explains the PostgreSQL index.
--
-- An FTS5 index with the trigram tokenizer (SQLite 3.34+): a quoted phrase is a substring
-- match, case-insensitive, for Chinese as for Latin text, from three characters; a
-- two-character query falls back to LIKE on messages (storage/search.py). External content
-- (the text lives once, in messages), kept in sync by the triggers below. A purged message
-- (retention, 0013: the body emptied and purged_at set in one UPDATE) is deleted from the
-- index and never put back, and only unpurged rows are in it, so every 'delete' below names
-- exactly what was indexed (FTS5 requires that of an external-content table).

CREATE VIRTUAL TABLE messages_fts USING fts5(
    body, content = 'messages', content_rowid = 'id', tokenize = 'trigram'
);

INSERT INTO messages_fts (rowid, body) SELECT id, body FROM messages WHERE purged_at IS NULL;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN NEW.purged_at IS NULL
BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (NEW.id, NEW.body);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN OLD.purged_at IS NULL
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', OLD.id, OLD.body);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, purged_at ON messages
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body)
    SELECT 'delete', OLD.id, OLD.body WHERE OLD.purged_at IS NULL;
    INSERT INTO messages_fts (rowid, body)
    SELECT NEW.id, NEW.body WHERE NEW.purged_at IS NULL;
END;
