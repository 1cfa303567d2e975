-- The original design's table, kept column for column, plus what the daemon needs
-- to debounce across restarts. Operators write the first block (through the CLI);
-- the daemon writes the rest.
CREATE TABLE IF NOT EXISTS data_sources (
    id                 varchar(50) PRIMARY KEY,
    name               varchar(100) NOT NULL,
    type               varchar(50)  NOT NULL DEFAULT 'service',
    plugin             varchar(100) NOT NULL,
    config             jsonb        NOT NULL DEFAULT '{}'::jsonb,
    enabled            boolean      NOT NULL DEFAULT true,
    connection_status  varchar(20)  NOT NULL DEFAULT 'unknown'
        CHECK (connection_status IN ('unknown', 'connected', 'disconnected', 'error')),
    last_tested_at     timestamptz,
    test_status        varchar(20) CHECK (test_status IN ('success', 'failed')),
    test_error_message text,
    created_at         timestamptz  NOT NULL DEFAULT now(),
    updated_at         timestamptz  NOT NULL DEFAULT now(),

    -- per-source overrides of the daemon defaults (NULL = use the default)
    interval_s         real CHECK (interval_s > 0),
    timeout_s          real CHECK (timeout_s > 0),
    rise               integer CHECK (rise > 0),
    fall               integer CHECK (fall > 0),
    retry_interval_s   real CHECK (retry_interval_s > 0),

    -- debounce state: persisted so a restarted daemon continues the streak
    pending_status     varchar(20) CHECK (pending_status IN ('connected', 'disconnected', 'error')),
    pending_count      integer NOT NULL DEFAULT 0,
    pending_results    jsonb   NOT NULL DEFAULT '[]'::jsonb,
    recent_results     varchar(21) NOT NULL DEFAULT '',   -- one letter per result (c/d/e), newest last
    flapping           boolean NOT NULL DEFAULT false,
    percent_state_change real NOT NULL DEFAULT 0,
    status_changed_at  timestamptz,
    latency_ms         real,
    reconnect_count    bigint  NOT NULL DEFAULT 0
) WITH (fillfactor = 60);  -- room on each page for HOT updates: the daemon rewrites every row each interval

CREATE INDEX IF NOT EXISTS data_sources_status_idx ON data_sources (connection_status);
CREATE INDEX IF NOT EXISTS data_sources_plugin_idx ON data_sources (plugin);

-- Every confirmed transition and every flapping start/stop: one row each, written in the
-- same transaction as the status change. The id orders the feed that SSE and
-- /api/v1/events tail, so it is the resume point for clients.
CREATE TABLE IF NOT EXISTS status_history (
    id            bigserial PRIMARY KEY,
    source_id     varchar(50) NOT NULL,
    event         varchar(20) NOT NULL DEFAULT 'transition'
        CHECK (event IN ('transition', 'flapping_started', 'flapping_stopped')),
    from_status   varchar(20) NOT NULL,
    to_status     varchar(20) NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    error_message text,
    results       jsonb NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX IF NOT EXISTS status_history_source_idx ON status_history (source_id, id DESC);

-- One row per running daemon; /readyz and /api/v1/summary read the freshest heartbeat.
CREATE TABLE IF NOT EXISTS daemon_nodes (
    node_id      varchar(100) PRIMARY KEY,
    hostname     varchar(255) NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    sources      integer NOT NULL DEFAULT 0,
    version      varchar(50) NOT NULL DEFAULT ''
);

-- A change to what is probed always moves updated_at (the daemon's resync compares it),
-- even when an operator edits the row with plain SQL. Row-level, but only for UPDATE OF
-- these columns: the daemon's status writes never fire it.
CREATE OR REPLACE FUNCTION healthd_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.name, NEW.type, NEW.plugin, NEW.config, NEW.enabled, NEW.interval_s, NEW.timeout_s,
        NEW.rise, NEW.fall, NEW.retry_interval_s)
       IS DISTINCT FROM (OLD.name, OLD.type, OLD.plugin, OLD.config, OLD.enabled, OLD.interval_s,
        OLD.timeout_s, OLD.rise, OLD.fall, OLD.retry_interval_s) THEN
        NEW.updated_at := clock_timestamp();
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS data_sources_touch ON data_sources;
CREATE TRIGGER data_sources_touch
    BEFORE UPDATE OF name, type, plugin, config, enabled, interval_s, timeout_s, rise, fall,
        retry_interval_s ON data_sources
    FOR EACH ROW EXECUTE FUNCTION healthd_touch_updated_at();

-- Operators' changes wake the daemon (statement level: an import of 100,000 rows is
-- one notification). The daemon's own status writes do not touch these columns.
CREATE OR REPLACE FUNCTION healthd_sources_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('healthd_sources', TG_OP);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS data_sources_changed_ins ON data_sources;
CREATE TRIGGER data_sources_changed_ins AFTER INSERT OR DELETE ON data_sources
    FOR EACH STATEMENT EXECUTE FUNCTION healthd_sources_changed();
DROP TRIGGER IF EXISTS data_sources_changed_upd ON data_sources;
CREATE TRIGGER data_sources_changed_upd
    AFTER UPDATE OF name, type, plugin, config, enabled, interval_s, timeout_s, rise, fall,
        retry_interval_s ON data_sources
    FOR EACH STATEMENT EXECUTE FUNCTION healthd_sources_changed();
