-- The phases of HTTP probes (healthd/core/phases.py: resolve, connect, tls, processing,
-- transfer) in the latency rollups: per source per minute, how many successful probes
-- reported phases and the sum of each phase over them, in milliseconds (a mean per
-- bucket is sum / phased). Sums, not histograms: they add up across the rows of a wider
-- bucket and across a bucket written in parts, like count and failures.
ALTER TABLE latency_rollups
    ADD COLUMN IF NOT EXISTS phased integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS resolve_ms_sum double precision NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS connect_ms_sum double precision NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS tls_ms_sum double precision NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS processing_ms_sum double precision NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS transfer_ms_sum double precision NOT NULL DEFAULT 0;
