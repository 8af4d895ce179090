-- 0024_contest: refusals carry a published reason code (domain/reasons.py) beside the free
-- text, a complaint may be about a decision (link, visit or complaint, by id), and the
-- supervisors' openings of a conversation (audit entries conversation.opened) are found by
-- conversation, for the family that sees them (storage/openings.py).
ALTER TABLE family_links ADD COLUMN reason_code text;
ALTER TABLE visit_requests ADD COLUMN reason_code text;
ALTER TABLE complaints ADD COLUMN reason_code text;
ALTER TABLE complaints ADD COLUMN about_kind text CHECK (about_kind IN ('link', 'visit', 'complaint'));
ALTER TABLE complaints ADD COLUMN about_id bigint;
ALTER TABLE complaint_events ADD COLUMN reason_code text;
CREATE INDEX complaints_about ON complaints (about_kind, about_id) WHERE about_kind IS NOT NULL;
CREATE INDEX audit_entries_openings ON audit_entries (object_id, id)
    WHERE action = 'conversation.opened';
