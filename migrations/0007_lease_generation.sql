-- Fencing tokens for the shard leases. `generation` moves on whenever a shard changes
-- holder (taken from nobody or from another daemon); renewing, or re-taking one's own
-- expired lease, keeps it. Every status and transition write carries the generation it
-- was probed under and lands only while the shard's generation is still that one, so a
-- daemon that was cut off while another took its shards cannot overwrite their truth.
ALTER TABLE shard_leases ADD COLUMN IF NOT EXISTS generation bigint NOT NULL DEFAULT 0;
