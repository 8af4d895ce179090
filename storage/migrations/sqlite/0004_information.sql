-- 0004_information: inmate information cards and visits (issue #5).
-- A visit request keeps the visitors' names and when it was decided; a relative has at most
-- one pending request per inmate (enforced here, so two racing requests cannot both pass).

ALTER TABLE visit_requests ADD COLUMN visitor_names text NOT NULL DEFAULT '[]';
ALTER TABLE visit_requests ADD COLUMN decided_at integer;
CREATE UNIQUE INDEX visit_requests_one_pending ON visit_requests (relative_id, inmate_id)
    WHERE state = 'pending';
CREATE INDEX visit_requests_inmate ON visit_requests (inmate_id, state, slot_start);
CREATE INDEX visit_requests_relative ON visit_requests (relative_id, id);
