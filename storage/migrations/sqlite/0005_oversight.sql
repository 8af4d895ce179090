-- 0005_oversight: complaints' reference counters and escalation, lookup indexes.

-- The last reference number given per prison and (bureau-local) year: GM-2026-000123.
-- Taken with an upsert inside the filing transaction, whose row lock serialises concurrent
-- filers of one prison and year, so no two complaints ever get the same number.
CREATE TABLE complaint_counters (
    prison_id bigint NOT NULL REFERENCES prisons (id),
    year      integer NOT NULL,
    last      integer NOT NULL,
    PRIMARY KEY (prison_id, year)
);

-- Set once a complaint is escalated to the bureau: from then on the admin handles it.
ALTER TABLE complaints ADD COLUMN escalated_at integer;
ALTER TABLE complaints ADD COLUMN updated_at integer;

CREATE INDEX complaints_prison ON complaints (prison_id, state, deadline);
CREATE INDEX complaints_complainant ON complaints (complainant_id);
CREATE INDEX complaint_events_complaint ON complaint_events (complaint_id, id);
CREATE INDEX announcements_prison ON announcements (prison_id, id);
