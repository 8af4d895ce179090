-- 0021_partitioned_messages: `messages` hash-partitioned by conversation (16 partitions).
--
-- Every query that matters names one conversation: history pages and resume (conversation,
-- seq), the append's cid lookup (conversation, sender, cid) and its insert. Partitioned by
-- hash of conversation_id, each of those touches one partition (a sixteenth of the rows and
-- of every index), vacuum, reindex and retention work partition by partition, and a
-- partition can later be detached and placed elsewhere. tests/test_partitions.py shows the
-- pruning with the plans PostgreSQL ran; the README has the cost of an append, measured.
--
-- The conversion is written against whatever `messages` is when it runs (other migrations
-- add columns, indexes, triggers and references to it), read from the catalog:
-- * columns, defaults, CHECK constraints, storage and statistics: CREATE TABLE ... LIKE;
-- * the primary key: a key of a partitioned table must contain the partition key, so
--   PRIMARY KEY (id) becomes PRIMARY KEY (id, conversation_id). id stays first, so a lookup
--   by id alone still has an index (one probe per partition), and id is still unique (one
--   sequence); likewise any other UNIQUE constraint lacking conversation_id gains it;
-- * indexes, foreign keys out of messages, triggers (0007's life cycle and every later one,
--   with their enabled state), statistics targets of columns and index columns (0019's
--   bigram index): re-created from their definitions;
-- * foreign keys INTO messages (id): a referenced key must now be (id, conversation_id).
--   A referencing table with its own conversation_id references (its column, its
--   conversation_id), MATCH SIMPLE as before; one without gets a <column>_conversation_id
--   column (message_id -> message_conversation_id), filled from messages for existing rows
--   and by a trigger for new ones, referenced MATCH FULL (an id that names no message still
--   fails, as it did).
-- The rows are copied as they are (no trigger fires: the life cycle already ran on them) and
-- the id sequence is kept. kinline_append keeps its signature and its work; only its cid
-- lookup is rewritten to prune (below).

CREATE FUNCTION kinline_message_conversation() RETURNS trigger LANGUAGE plpgsql AS $$
-- TG_ARGV: the column holding a message id, the column to fill with its conversation
DECLARE
    message bigint := (to_jsonb(NEW) ->> TG_ARGV[0])::bigint;
BEGIN
    NEW := jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[1],
        (SELECT m.conversation_id FROM messages m WHERE m.id = message)));
    RETURN NEW;
END $$;

DO $$
DECLARE
    parts constant integer := 16;
    old constant regclass := 'messages'::regclass;
    conv_attnum smallint;
    r record;
    cols text;
    seq text := pg_get_serial_sequence('messages', 'id');
    constraints text[] := '{}';
    indexes text[] := '{}';
    triggers text[] := '{}';
    refs text[] := '{}';
    targets text[] := '{}';
    stmt text;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = old) = 'p' THEN
        RETURN;  -- already partitioned
    END IF;
    SELECT attnum INTO conv_attnum FROM pg_attribute
     WHERE attrelid = old AND attname = 'conversation_id';

    -- keys, unique constraints and foreign keys of messages itself (CHECKs come with LIKE)
    FOR r IN
        SELECT c.conname, c.contype, c.conkey, pg_get_constraintdef(c.oid) AS def,
               (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.i)
                  FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, i)
                  JOIN pg_attribute a ON a.attrelid = old AND a.attnum = k.attnum) AS keycols
          FROM pg_constraint c
         WHERE c.conrelid = old AND c.contype IN ('p', 'u', 'f', 'x')
         ORDER BY c.contype DESC, c.conname  -- p, then u, then f/x
    LOOP
        IF r.contype IN ('p', 'u') AND NOT conv_attnum = ANY (r.conkey) THEN
            r.def := CASE r.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END
                     || ' (' || r.keycols || ', conversation_id)';
        ELSIF r.contype = 'x' THEN
            RAISE EXCEPTION 'messages has an exclusion constraint (%): convert it by hand',
                r.conname;
        END IF;
        constraints := constraints
            || format('ALTER TABLE messages ADD CONSTRAINT %I %s', r.conname, r.def);
    END LOOP;

    -- indexes that back no constraint
    FOR r IN
        SELECT i.indexrelid::regclass AS name, i.indisunique, i.indkey,
               pg_get_indexdef(i.indexrelid) AS def
          FROM pg_index i
         WHERE i.indrelid = old
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
    LOOP
        IF r.indisunique AND NOT conv_attnum = ANY (r.indkey::smallint[]) THEN
            RAISE EXCEPTION 'unique index % lacks conversation_id: convert it by hand', r.name;
        END IF;
        indexes := indexes || r.def;
    END LOOP;

    -- statistics targets set on columns and on index columns (ALTER ... SET STATISTICS)
    FOR r IN
        SELECT format('ALTER TABLE messages ALTER COLUMN %I SET STATISTICS %s',
                      a.attname, a.attstattarget) AS def
          FROM pg_attribute a
         WHERE a.attrelid = old AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget >= 0
        UNION ALL
        SELECT format('ALTER INDEX %I ALTER COLUMN %s SET STATISTICS %s',
                      c.relname, a.attnum, a.attstattarget)
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          JOIN pg_attribute a ON a.attrelid = i.indexrelid
         WHERE i.indrelid = old AND a.attnum > 0 AND a.attstattarget >= 0
    LOOP
        targets := targets || r.def;
    END LOOP;

    -- triggers, and whether each is enabled
    FOR r IN
        SELECT t.tgname, t.tgenabled, pg_get_triggerdef(t.oid) AS def
          FROM pg_trigger t WHERE t.tgrelid = old AND NOT t.tgisinternal ORDER BY t.tgname
    LOOP
        triggers := triggers || r.def;
        IF r.tgenabled = 'D' THEN
            triggers := triggers || format('ALTER TABLE messages DISABLE TRIGGER %I', r.tgname);
        END IF;
    END LOOP;

    -- foreign keys into messages: dropped now, re-created on (id, conversation_id) below
    FOR r IN
        SELECT c.conrelid::regclass AS tbl, c.conrelid, c.conname,
               pg_get_constraintdef(c.oid) AS def,
               (SELECT a.attname FROM pg_attribute a
                 WHERE a.attrelid = c.conrelid AND a.attnum = c.conkey[1]) AS col,
               EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = c.conrelid AND a.attname = 'conversation_id'
                          AND NOT a.attisdropped) AS has_conv
          FROM pg_constraint c
         WHERE c.confrelid = old AND c.contype = 'f'
    LOOP
        IF cardinality((SELECT confkey FROM pg_constraint
                         WHERE conrelid = r.conrelid AND conname = r.conname)) <> 1 THEN
            RAISE EXCEPTION '% references messages by several columns: convert it by hand',
                r.conname;
        END IF;
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
        -- what follows "REFERENCES messages(id)": ON DELETE / ON UPDATE / DEFERRABLE
        stmt := substring(r.def FROM 'REFERENCES [^(]+\([^)]*\)(.*)$');
        stmt := regexp_replace(stmt, '(SET NULL|SET DEFAULT)', '\1 (' || quote_ident(r.col) || ')',
                               'g');
        IF r.has_conv THEN
            refs := refs || format(
                'ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (%I, conversation_id)'
                ' REFERENCES messages (id, conversation_id)%s', r.tbl, r.conname, r.col, stmt);
        ELSE
            cols := CASE WHEN r.col LIKE '%\_id' THEN left(r.col, -3) ELSE r.col END
                    || '_conversation_id';
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I bigint', r.tbl, cols);
            refs := refs
                || format('UPDATE %s t SET %I = m.conversation_id FROM messages m'
                          ' WHERE m.id = t.%I', r.tbl, cols, r.col)
                || format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF %I ON %s'
                          ' FOR EACH ROW EXECUTE FUNCTION kinline_message_conversation(%L, %L)',
                          r.conname || '_conversation', r.col, r.tbl, r.col, cols)
                || format('ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (%I, %I)'
                          ' REFERENCES messages (id, conversation_id) MATCH FULL%s',
                          r.tbl, r.conname, r.col, cols, stmt);
        END IF;
    END LOOP;

    ALTER TABLE messages RENAME TO messages_unpartitioned;
    CREATE TABLE messages (
        LIKE messages_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS
             INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STORAGE INCLUDING STATISTICS
             INCLUDING COMMENTS
    ) PARTITION BY HASH (conversation_id);
    FOR i IN 0 .. parts - 1 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF messages'
                       ' FOR VALUES WITH (MODULUS %s, REMAINDER %s)', 'messages_p' || i, parts, i);
    END LOOP;

    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
      FROM pg_attribute
     WHERE attrelid = 'messages_unpartitioned'::regclass AND attnum > 0 AND NOT attisdropped
       AND attgenerated = '';
    EXECUTE format('INSERT INTO messages (%s) SELECT %s FROM messages_unpartitioned', cols, cols);
    IF seq IS NOT NULL THEN
        EXECUTE format('ALTER SEQUENCE %s OWNED BY messages.id', seq);
    END IF;
    DROP TABLE messages_unpartitioned;

    FOREACH stmt IN ARRAY constraints || indexes || targets || triggers || refs LOOP
        EXECUTE stmt;
    END LOOP;

    -- each partition's copy of an index is named after it: messages_body_bigrams_p3, ...
    -- (a plan then names the index it uses, whichever partition it reads)
    FOR r IN
        SELECT child.relname AS name, parent.relname || '_' || split_part(tbl.relname, '_', 2)
                   AS wanted
          FROM pg_index pi
          JOIN pg_class parent ON parent.oid = pi.indexrelid
          JOIN pg_inherits h ON h.inhparent = pi.indexrelid
          JOIN pg_class child ON child.oid = h.inhrelid
          JOIN pg_index ci ON ci.indexrelid = child.oid
          JOIN pg_class tbl ON tbl.oid = ci.indrelid
         WHERE pi.indrelid = 'messages'::regclass
    LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', r.name, left(r.wanted, 63));
    END LOOP;

    -- kinline_append's cid lookup, so that it reads one partition and opens no other:
    -- * a LATERAL probe per input row (LIMIT 1: the key is unique) instead of a join, so it
    --   is always a parameterized index scan, pruned when run to the row's partition (as a
    --   join, the generic plan PL/pgSQL switches to after five calls hash-joined the batch
    --   against a scan of all 16 partitions: 16 ms at 21,000 rows, growing with the table);
    -- * when the batch is one conversation (an idle store commits each message at once), a
    --   copy of the statement whose probe also says m.conversation_id = p_conv[1]: that
    --   prunes before the plan starts, so the other 15 partitions and their indexes are not
    --   even opened (opening them all on every call cost 0.7 ms per append on this machine,
    --   bench/partitions.py). Several conversations take the general statement.
    FOR r IN
        SELECT p.oid::regprocedure AS fn, pg_get_functiondef(p.oid) AS def
          FROM pg_proc p WHERE p.proname = 'kinline_append'
    LOOP
        stmt := regexp_replace(r.def,
            'FROM input i JOIN messages m\s+ON m\.conversation_id = i\.conv'
            '\s+AND m\.sender_id = i\.sender\s+AND m\.cid = i\.cid',
            E'FROM input i CROSS JOIN LATERAL (\n'
            || E'            SELECT m.* FROM messages m\n'
            || E'             WHERE m.conversation_id = i.conv AND m.sender_id = i.sender\n'
            || E'               AND m.cid = i.cid\n'
            || E'             LIMIT 1) m');
        IF stmt = r.def OR array_length(string_to_array(stmt, 'RETURN QUERY'), 1) <> 2 THEN
            RAISE EXCEPTION '%: its cid lookup is not the one 0021 knows: make it a pruned'
                ' LATERAL probe by hand (see 0021)', r.fn;
        END IF;
        DECLARE
            at_query integer := position('RETURN QUERY' IN stmt);
            rest text := substr(stmt, at_query + length('RETURN QUERY'));
            at_end integer := length(rest) - position(';' IN reverse(rest)) + 1;
            query text := left(rest, at_end - 1);
        BEGIN
            stmt := left(stmt, at_query - 1)
                || E'IF p_conv[1] = ALL (p_conv) THEN  -- one conversation: one partition\n'
                || '    RETURN QUERY'
                || replace(query, E'AND m.cid = i.cid\n',
                           E'AND m.cid = i.cid AND m.conversation_id = p_conv[1]\n')
                || E';\n    ELSE\n    RETURN QUERY' || query || E';\n    END IF;'
                || substr(rest, at_end + 1);
        END;
        EXECUTE stmt;
    END LOOP;
END $$;

ANALYZE messages;
