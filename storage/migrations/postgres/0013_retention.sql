-- 0013_retention: messages past the retention period keep their place (seq, sender, time)
-- but lose their text; purged_at says when. The purge is audited (storage/retention.py).
ALTER TABLE messages ADD COLUMN purged_at timestamptz;
CREATE INDEX messages_unpurged_created ON messages (created_at) WHERE purged_at IS NULL;
