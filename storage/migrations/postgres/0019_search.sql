-- 0019_search: finding any message again (issue 18), indexed so it stays fast at millions.
--
-- Why not pg_trgm: it indexes trigrams, and a two-character query (身体, the usual length of
-- a Chinese word) has no trigram, so `body ILIKE '%身体%'` cannot use a gin_trgm_ops index and
-- scans every row (checked on PostgreSQL 15 here: Seq Scan for '%身体%', Bitmap Index Scan
-- only from three characters). So the index is over bigrams instead, the approach of pg_bigm
-- (not packaged here) with only built-in types: kinline_bigrams(body) is the set of distinct
-- two-character substrings of lower(body), a text[] in a GIN index (array_ops). A query of n
-- characters (n >= 2) asks for the rows whose bigrams contain all of the query's, then
-- rechecks the exact substring (strpos on lower()); Latin text is case-insensitive through
-- lower(), Chinese needs no folding. storage/search.py writes the query; the README has the
-- EXPLAIN ANALYZE on a million rows.
--
-- Purged messages (retention, 0013) have an empty body and so no bigram: they leave the index
-- in the purging UPDATE itself. A plain (non-unique) expression index: also definable on a
-- partitioned messages table, where it is created on every partition.

CREATE FUNCTION kinline_bigrams(body text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT substr(t.s, g.i, 2)), '{}')
    FROM (SELECT lower($1) AS s) t, generate_series(1, length(t.s) - 1) AS g(i)
$$;

CREATE INDEX messages_body_bigrams ON messages USING gin (kinline_bigrams(body));
