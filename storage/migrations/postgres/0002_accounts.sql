-- Accounts and family verification (issue #4).
-- A link request keeps what the relative claimed, matched or not: the prison as typed
-- (prison_claim) and a key naming the claim, so a duplicate pending request is refused the same
-- way whether or not the inmate exists.

ALTER TABLE family_links ADD COLUMN prison_claim text NOT NULL DEFAULT '';
ALTER TABLE family_links ADD COLUMN claim_key text;
CREATE UNIQUE INDEX family_links_one_pending_claim ON family_links (relative_id, claim_key)
    WHERE state = 'pending' AND claim_key IS NOT NULL;
CREATE INDEX family_links_prison ON family_links (prison_id, state, id);
CREATE INDEX family_links_relative ON family_links (relative_id, id);
