-- The daemon's own counters (healthd/selfmetrics.py), written with every heartbeat; the
-- API's /metrics renders them per node. NULL until a daemon of this version beats.
ALTER TABLE daemon_nodes ADD COLUMN IF NOT EXISTS metrics jsonb;
