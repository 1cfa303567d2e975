-- A recurring maintenance window in a time zone this PostgreSQL server does not know (its
-- zone data older than the CLI's, or a row written by hand) made every statement that
-- evaluated it fail: every transition refused, the API's source list and page answering
-- 500. Now such a window fails only itself: it is never open and has no next occurrence,
-- and healthd_window_evaluable() says so (the daemon logs it once, `healthd maintenance
-- list` shows it).

-- Whether the server can evaluate window w (a one-off window needs no zone).
CREATE OR REPLACE FUNCTION healthd_window_evaluable(w maintenance_windows)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF w.every_time IS NULL THEN
        RETURN true;
    END IF;
    PERFORM now() AT TIME ZONE w.tz;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;  -- time zone "..." not recognized
END $$;

-- As in 0009_operations.sql, but for a zone the server does not know: NULL (none).
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
    -- the only conversion that can fail on the zone: once it is known, the others are too
    BEGIN
        local_at := at AT TIME ZONE w.tz;
    EXCEPTION WHEN invalid_parameter_value THEN
        RETURN NULL;
    END;
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
