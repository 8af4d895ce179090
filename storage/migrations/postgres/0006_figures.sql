-- 0006_figures: indexes for the figures (storage/figures.py), which read whole time ranges.
-- Cycles per prison by the day their wait started or they were resolved; across prisons
-- (bureau) by the day their wait started; messages by when they were created (counted per
-- local day, then joined to their conversation's prison).
CREATE INDEX conversation_cycles_prison_started ON conversation_cycles (prison_id, wait_started_at);
CREATE INDEX conversation_cycles_prison_resolved ON conversation_cycles (prison_id, resolved_at);
CREATE INDEX conversation_cycles_started ON conversation_cycles (wait_started_at);
CREATE INDEX messages_created ON messages (created_at);
-- (end of the figures part)
