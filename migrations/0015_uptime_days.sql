-- The seconds a source spent in each state over an interval, from its transitions: the
-- state it starts in is its last transition at or before the interval's start (one of
-- this source: none earlier than its creation, which may be an earlier source with the
-- same id), unknown if there is none; time before the creation counts as nothing. Up is
-- connected, down is disconnected or error, anything else is unknown, as
-- statusapi/data/uptime.py counts them. Maintenance is not applied here: the reader sets
-- its windows apart (statusapi/data/figures.py).
CREATE OR REPLACE FUNCTION healthd_state_seconds(
    sid varchar, created timestamptz, lo timestamptz, hi timestamptz,
    OUT up_s float8, OUT down_s float8, OUT unknown_s float8)
LANGUAGE sql STABLE AS $$
    WITH b AS (SELECT greatest(lo, created) AS b0),
    pts AS (
        SELECT b.b0 AS at, coalesce((
            SELECT h.to_status FROM status_history h
            WHERE h.source_id = sid AND h.event = 'transition'
              AND h.at <= b.b0 AND h.at >= created
            ORDER BY h.at DESC LIMIT 1), 'unknown') AS st
        FROM b WHERE b.b0 < hi
        UNION ALL
        SELECT h.at, h.to_status FROM status_history h, b
        WHERE h.source_id = sid AND h.event = 'transition' AND h.at > b.b0 AND h.at < hi),
    seg AS (
        SELECT st, date_part('epoch', lead(at, 1, hi) OVER (ORDER BY at) - at) AS s FROM pts)
    SELECT coalesce(sum(s) FILTER (WHERE st = 'connected'), 0),
           coalesce(sum(s) FILTER (WHERE st IN ('disconnected', 'error')), 0),
           coalesce(sum(s) FILTER (WHERE st NOT IN ('connected', 'disconnected', 'error')), 0)
    FROM seg
$$;

-- Per source per closed UTC day, those seconds (healthd_state_seconds over the day), kept
-- by the daemon (healthd/store/uptimedays.py) so that uptime over 90 days reads 90 rows
-- instead of every transition. created_at is the source's when the day was rolled up: a
-- row of an earlier source with the same id is not this one's. upto_id is the newest
-- history id the roll-up saw: a transition written later for the day (a spooled write)
-- makes the daemon roll that day and the ones after it again.
CREATE TABLE IF NOT EXISTS uptime_days (
    source_id  varchar(50) NOT NULL,
    day        date NOT NULL,
    created_at timestamptz NOT NULL,
    up_s       float8 NOT NULL,
    down_s     float8 NOT NULL,
    unknown_s  float8 NOT NULL,
    upto_id    bigint NOT NULL,
    PRIMARY KEY (source_id, day)
);
CREATE INDEX IF NOT EXISTS uptime_days_day_idx ON uptime_days (day);

GRANT SELECT ON uptime_days TO healthd_readonly;
