-- Several daemons share one database by leasing shards of the sources: a source belongs
-- to shard crc32(id) % 64, and a shard is probed only by the daemon holding its lease.
-- Leases are renewed with the heartbeat and taken over when they expire (a dead daemon).
CREATE TABLE IF NOT EXISTS shard_leases (
    shard      integer PRIMARY KEY CHECK (shard >= 0),
    node_id    varchar(100),
    expires_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO shard_leases (shard) SELECT g FROM generate_series(0, 63) AS g ON CONFLICT DO NOTHING;
GRANT SELECT ON shard_leases TO healthd_readonly;
