-- 0013_retention (the PostgreSQL migration of the same number says why).
ALTER TABLE messages ADD COLUMN purged_at integer;
CREATE INDEX messages_unpurged_created ON messages (created_at) WHERE purged_at IS NULL;
