-- 0026_cheaper_append (the PostgreSQL migration of the same number says why): the unique
-- (relative_id, inmate_id) serves every lookup by relative, and (relative_id, updated_at)
-- was one more index write per message, since every message moves updated_at.
DROP INDEX conversations_relative;
