-- Operations (docs/operations.md): maintenance windows, dependencies between sources,
-- webhook routing and formats, a delivery log, retention.

-- Maintenance windows. A one-off window is [starts_at, ends_at). A recurring one repeats
-- every week on every_dow (0 = Sunday) or every day (every_dow NULL) at every_time in
-- the zone tz, for duration, from starts_at on. source_ids NULL means every source.
CREATE TABLE IF NOT EXISTS maintenance_windows (
    id          serial PRIMARY KEY,
    source_ids  varchar(50)[],
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,
    every_dow   smallint CHECK (every_dow BETWEEN 0 AND 6),
    every_time  time,
    tz          text NOT NULL DEFAULT 'UTC',
    duration    interval,
    reason      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((every_time IS NULL AND ends_at IS NOT NULL AND ends_at > starts_at)
        OR (every_time IS NOT NULL AND duration > interval '0'))
);

-- The occurrence of window w that contains `at`, or else its next one; NULL when there
-- is none (a one-off window that is over). Recurring: the latest start at or before
-- `at` in local time, or the one after it. A duration is shorter than the period (the
-- CLI checks), so only those two can contain or follow `at`.
CREATE OR REPLACE FUNCTION healthd_window_occurrence(w maintenance_windows, at timestamptz)
RETURNS tstzrange LANGUAGE plpgsql STABLE AS $$
DECLARE
    local_at  timestamp;
    period    integer;
    back      integer;
    start_l   timestamp;
    start_u   timestamptz;
BEGIN
    IF w.every_time IS NULL THEN
        IF w.ends_at <= at THEN
            RETURN NULL;
        END IF;
        RETURN tstzrange(w.starts_at, w.ends_at);
    END IF;
    local_at := at AT TIME ZONE w.tz;
    period := CASE WHEN w.every_dow IS NULL THEN 1 ELSE 7 END;
    back := CASE WHEN w.every_dow IS NULL THEN 0
                 ELSE (extract(dow FROM local_at)::int - w.every_dow + 7) % 7 END;
    start_l := (local_at::date - back) + w.every_time;
    IF start_l > local_at THEN
        start_l := start_l - make_interval(days => period);
    END IF;
    start_u := start_l AT TIME ZONE w.tz;
    IF start_u < w.starts_at OR start_u + w.duration <= at THEN
        start_l := start_l + make_interval(days => period);
        start_u := start_l AT TIME ZONE w.tz;
        -- the first occurrence is the first one at or after starts_at
        WHILE start_u < w.starts_at LOOP
            start_l := start_l + make_interval(days => period);
            start_u := start_l AT TIME ZONE w.tz;
        END LOOP;
    END IF;
    RETURN tstzrange(start_u, start_u + w.duration);
END $$;

-- Every occurrence of window w that overlaps [lo, hi), in order: what uptime sets apart.
CREATE OR REPLACE FUNCTION healthd_window_spans(w maintenance_windows, lo timestamptz,
    hi timestamptz)
RETURNS SETOF tstzrange LANGUAGE plpgsql STABLE AS $$
DECLARE
    r tstzrange := healthd_window_occurrence(w, lo);
BEGIN
    -- an occurrence that ended before lo is not returned by healthd_window_occurrence
    WHILE r IS NOT NULL AND lower(r) < hi LOOP
        RETURN NEXT r;
        EXIT WHEN w.every_time IS NULL;
        r := healthd_window_occurrence(w, upper(r));
    END LOOP;
END $$;

-- Whether a source is inside a window at `at`.
CREATE OR REPLACE FUNCTION healthd_in_maintenance(source varchar, at timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM maintenance_windows w
        WHERE (w.source_ids IS NULL OR source = ANY (w.source_ids))
          AND healthd_window_occurrence(w, at) @> at)
$$;

-- Transitions are recorded inside windows and behind a down parent (the truth is kept),
-- marked so that no webhook is sent and uptime can set the time apart.
ALTER TABLE status_history ADD COLUMN IF NOT EXISTS maintenance boolean NOT NULL DEFAULT false;
ALTER TABLE status_history ADD COLUMN IF NOT EXISTS suppressed_by varchar(50)[];

-- Dependencies: a child's failure while a parent is not connected pages nobody.
ALTER TABLE data_sources ADD COLUMN IF NOT EXISTS depends_on varchar(50)[] NOT NULL DEFAULT '{}';

-- Webhook routing (NULL = everything) and body format.
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS to_statuses text[];
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS source_ids varchar(50)[];
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS format varchar(20) NOT NULL DEFAULT 'healthd';
DO $$
BEGIN
    ALTER TABLE webhooks ADD CONSTRAINT webhooks_format_check
        CHECK (format IN ('healthd', 'slack', 'standard'));
EXCEPTION WHEN duplicate_object THEN
    NULL;
END $$;

-- The delivery log: the receiver's last HTTP status beside last_error.
ALTER TABLE webhook_outbox ADD COLUMN IF NOT EXISTS last_status integer;
ALTER TABLE webhook_outbox ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX IF NOT EXISTS webhook_outbox_webhook_idx ON webhook_outbox (webhook_id, id DESC);
-- retention deletes outbox rows by history id, and history rows by time
CREATE INDEX IF NOT EXISTS webhook_outbox_history_idx ON webhook_outbox (history_id);
CREATE INDEX IF NOT EXISTS status_history_at_idx ON status_history (at);

GRANT SELECT ON maintenance_windows TO healthd_readonly;
