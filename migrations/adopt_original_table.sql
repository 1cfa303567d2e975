-- Adopting the original backend's data_sources table in place. Not a numbered migration:
-- healthd/store/adopt.py runs it once, in the transaction of the first `healthd migrate`,
-- before 0001_data_sources.sql, and only on a table of the original's shape whose values it
-- has checked. It brings the table to exactly the shape 0001_data_sources.sql creates
-- (so every later migration finds what it expects there) and keeps every row and every
-- original column. docs/adopting.md says what happens to each column and why.

-- The status words as healthd spells them (healthd/core/words.py); anything else, NULL
-- included, was never a status healthd confirmed: `unknown`, which the first probe
-- replaces at once (healthd/core/debounce.py adopts the first result from unknown).
CREATE OR REPLACE FUNCTION healthd_adopted_status(word text) RETURNS varchar
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN lower(btrim(word)) IN ('unknown', 'connected', 'disconnected', 'error')
                THEN lower(btrim(word)) ELSE 'unknown' END
$$;
-- the raw last result: a word that is neither is no result (NULL until the next probe)
CREATE OR REPLACE FUNCTION healthd_adopted_test_status(word text) RETURNS varchar
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN lower(btrim(word)) IN ('success', 'failed') THEN lower(btrim(word)) END
$$;

-- What was there before, for `healthd migrate --status` and for going back
-- (docs/adopting.md): the zone the TIMESTAMP values were read in, each column as it was
-- (type, NOT NULL, default), and every value that was changed (never a config: a NULL
-- config is the only one replaced).
CREATE TABLE healthd_adoption (
    adopted_at       timestamptz NOT NULL DEFAULT now(),
    time_zone        text NOT NULL,
    source_rows      integer NOT NULL,
    original_columns jsonb NOT NULL,  -- {"config": {"type": "json", "not_null": false, "default": null}, ...}
    mapped           jsonb NOT NULL   -- [{"id", "column", "from", "to"}, ...]
);

INSERT INTO healthd_adoption (time_zone, source_rows, original_columns, mapped)
SELECT
    current_setting('TimeZone'),
    (SELECT count(*) FROM data_sources),
    (SELECT jsonb_object_agg(a.attname, jsonb_build_object(
                'type', format_type(a.atttypid, a.atttypmod),
                'not_null', a.attnotnull,
                'default', pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum)
       FROM pg_attribute a
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = 'data_sources'::regclass AND a.attnum > 0 AND NOT a.attisdropped),
    (SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'column', col, 'from', old,
                                                  'to', new) ORDER BY id, col), '[]'::jsonb)
       FROM (
           SELECT id, 'name' AS col, NULL::text AS old, id::text AS new
             FROM data_sources WHERE name IS NULL
           UNION ALL
           SELECT id, 'type', NULL, 'service' FROM data_sources WHERE type IS NULL
           UNION ALL
           SELECT id, 'config', NULL, '{}' FROM data_sources WHERE config IS NULL
           UNION ALL
           SELECT id, 'enabled', NULL, 'false' FROM data_sources WHERE enabled IS NULL
           UNION ALL
           SELECT id, 'connection_status', connection_status,
                  healthd_adopted_status(connection_status)
             FROM data_sources
            WHERE connection_status IS DISTINCT FROM healthd_adopted_status(connection_status)
           UNION ALL
           SELECT id, 'test_status', test_status, healthd_adopted_test_status(test_status)
             FROM data_sources
            WHERE test_status IS DISTINCT FROM healthd_adopted_test_status(test_status)
           UNION ALL
           SELECT id, 'created_at', NULL, 'updated_at, or the time of adoption'
             FROM data_sources WHERE created_at IS NULL
           UNION ALL
           SELECT id, 'updated_at', NULL, 'created_at, or the time of adoption'
             FROM data_sources WHERE updated_at IS NULL
       ) AS changes);

-- One rewrite of the table, every USING reading the row as it was. TIMESTAMP becomes
-- timestamptz read in this session's TimeZone (recorded above): the original wrote now()
-- into those columns, which PostgreSQL turned into the local time of the writer's
-- session, so the session's zone is what the values mean. JSON becomes jsonb (healthd
-- compares and indexes configs; the backend's reads of config are unchanged).
ALTER TABLE data_sources
    ALTER COLUMN id TYPE varchar(50),
    ALTER COLUMN name TYPE varchar(100) USING coalesce(name, id),
    ALTER COLUMN type TYPE varchar(50) USING coalesce(type, 'service'),
    ALTER COLUMN plugin TYPE varchar(100),
    ALTER COLUMN config TYPE jsonb USING coalesce(config::jsonb, '{}'::jsonb),
    -- NULL is not true: the original's `WHERE enabled = true` skipped such a row too
    ALTER COLUMN enabled TYPE boolean USING coalesce(enabled, false),
    ALTER COLUMN connection_status TYPE varchar(20)
        USING healthd_adopted_status(connection_status),
    ALTER COLUMN last_tested_at TYPE timestamptz,
    ALTER COLUMN test_status TYPE varchar(20) USING healthd_adopted_test_status(test_status),
    ALTER COLUMN test_error_message TYPE text,
    ALTER COLUMN created_at TYPE timestamptz
        USING coalesce(created_at::timestamptz, updated_at::timestamptz, now()),
    ALTER COLUMN updated_at TYPE timestamptz
        USING coalesce(updated_at::timestamptz, created_at::timestamptz, now());

-- The rest of 0001_data_sources.sql's table, constraint names included.
ALTER TABLE data_sources
    ALTER COLUMN name SET NOT NULL,
    ALTER COLUMN type SET DEFAULT 'service',
    ALTER COLUMN type SET NOT NULL,
    ALTER COLUMN plugin SET NOT NULL,
    ALTER COLUMN config SET DEFAULT '{}'::jsonb,
    ALTER COLUMN config SET NOT NULL,
    ALTER COLUMN enabled SET DEFAULT true,
    ALTER COLUMN enabled SET NOT NULL,
    ALTER COLUMN connection_status SET DEFAULT 'unknown',
    ALTER COLUMN connection_status SET NOT NULL,
    ADD CONSTRAINT data_sources_connection_status_check
        CHECK (connection_status IN ('unknown', 'connected', 'disconnected', 'error')),
    ADD CONSTRAINT data_sources_test_status_check CHECK (test_status IN ('success', 'failed')),
    ALTER COLUMN created_at SET DEFAULT now(),
    ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN updated_at SET DEFAULT now(),
    ALTER COLUMN updated_at SET NOT NULL,
    ADD COLUMN interval_s real CHECK (interval_s > 0),
    ADD COLUMN timeout_s real CHECK (timeout_s > 0),
    ADD COLUMN rise integer CHECK (rise > 0),
    ADD COLUMN fall integer CHECK (fall > 0),
    ADD COLUMN retry_interval_s real CHECK (retry_interval_s > 0),
    ADD COLUMN pending_status varchar(20)
        CHECK (pending_status IN ('connected', 'disconnected', 'error')),
    ADD COLUMN pending_count integer NOT NULL DEFAULT 0,
    ADD COLUMN pending_results jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN recent_results varchar(21) NOT NULL DEFAULT '',
    ADD COLUMN flapping boolean NOT NULL DEFAULT false,
    ADD COLUMN percent_state_change real NOT NULL DEFAULT 0,
    ADD COLUMN status_changed_at timestamptz,
    ADD COLUMN latency_ms real,
    ADD COLUMN reconnect_count bigint NOT NULL DEFAULT 0,
    SET (fillfactor = 60);

-- The backend goes on inserting rows of its own columns only, and may give NULL where it
-- always could: the same values the adoption gave, filled in before the constraints are
-- checked. On UPDATE only the definition columns an operator writes (the daemon's status
-- writes never fire it); it runs before data_sources_touch (triggers fire in name order),
-- which then compares the filled-in row.
CREATE OR REPLACE FUNCTION healthd_adopted_fill() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.name := coalesce(NEW.name, NEW.id);
    NEW.type := coalesce(NEW.type, 'service');
    NEW.config := coalesce(NEW.config, '{}'::jsonb);
    NEW.enabled := coalesce(NEW.enabled, false);
    IF TG_OP = 'INSERT' THEN
        NEW.connection_status := healthd_adopted_status(NEW.connection_status);
        NEW.test_status := healthd_adopted_test_status(NEW.test_status);
        NEW.created_at := coalesce(NEW.created_at, now());
        NEW.updated_at := coalesce(NEW.updated_at, now());
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER data_sources_adopted_fill
    BEFORE INSERT OR UPDATE OF name, type, config, enabled ON data_sources
    FOR EACH ROW EXECUTE FUNCTION healthd_adopted_fill();
