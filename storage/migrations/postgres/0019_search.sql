-- 0019_search: finding any message again (issue 18), indexed so it stays fast at millions.
--
-- Why not pg_trgm: it indexes trigrams, and a two-character query (身体, the usual length of
-- a Chinese word) has no trigram, so `body ILIKE '%身体%'` cannot use a gin_trgm_ops index and
-- scans every row (checked on PostgreSQL 15 here: Seq Scan for '%身体%', Bitmap Index Scan
-- only from three characters). So the index is over bigrams instead, the approach of pg_bigm
-- (not packaged here) with only built-in types: kinline_bigrams(body) is the two-character
-- substrings of lower(body), a text[] in a GIN index (array_ops). A query of n
-- characters (n >= 2) asks for the rows whose bigrams contain all of the query's, then
-- rechecks the exact substring (strpos on lower()); Latin text is case-insensitive through
-- lower(), Chinese needs no folding. storage/search.py writes the query (and, for a term
-- found everywhere, walks the newest messages instead); the README has the EXPLAIN ANALYZE
-- on a million rows.
--
-- Purged messages (retention, 0013) have an empty body and so no bigram: they leave the index
-- in the purging UPDATE itself. A plain (non-unique) expression index: also definable on a
-- partitioned messages table, where it is created on every partition.

-- The function is plpgsql (4x faster here than the same in SQL with generate_series and
-- DISTINCT: 17 against 68 microseconds for a 40-character body); duplicates are left in, GIN
-- stores each key of a row once. COST 1000 tells the planner what it costs per row, so it
-- never evaluates it row by row over the table where the index answers; PARALLEL RESTRICTED
-- keeps that cost from buying parallel workers for a search that reads a few pages (starting
-- them cost 40 ms on a busy machine, the search itself 0.1 ms). The statistics
-- target is raised so that the planner's estimate for a rare bigram is close (the default
-- keeps too few of the many distinct bigrams).

CREATE FUNCTION kinline_bigrams(body text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL RESTRICTED COST 1000 AS $$
DECLARE
    s text := lower(body);
    grams text[] := '{}';
BEGIN
    FOR i IN 1 .. length(s) - 1 LOOP
        grams := grams || substr(s, i, 2);
    END LOOP;
    RETURN grams;
END $$;

CREATE INDEX messages_body_bigrams ON messages USING gin (kinline_bigrams(body));
ALTER INDEX messages_body_bigrams ALTER COLUMN 1 SET STATISTICS 1000;
