-- Latency history without keeping raw results: per source per one-minute bucket, the
-- number of probes, how many failed, the slowest, and a fixed histogram of latencies
-- (bucket i counts latencies up to healthd.rollups.BOUNDS_MS[i]; the last one counts the
-- rest). The daemon adds to these rows in the statement that writes each result batch.
CREATE TABLE IF NOT EXISTS latency_rollups (
    source_id varchar(50) NOT NULL,
    bucket    timestamptz NOT NULL,
    count     integer NOT NULL DEFAULT 0,
    failures  integer NOT NULL DEFAULT 0,
    max_ms    real,
    hist      integer[] NOT NULL,
    PRIMARY KEY (source_id, bucket)
);

-- Uptime reads a source's transitions by time: those inside a window plus the last one
-- before it (the state the window starts in): index-only range scans, in time order.
CREATE INDEX IF NOT EXISTS status_history_source_at_idx
    ON status_history (source_id, at) INCLUDE (to_status) WHERE event = 'transition';

GRANT SELECT ON latency_rollups TO healthd_readonly;
