-- updated_at means again what it meant in the original: moved by every write of the row,
-- the daemon's status write included (its UPDATE sets updated_at = now() with the result).
-- Detecting an operator's change of what is probed gets a column of its own,
-- config_changed_at: the daemon's resync compares it, and the row trigger that used to
-- move updated_at moves it now (and updated_at with it: an operator's edit is a write too).
ALTER TABLE data_sources ADD COLUMN IF NOT EXISTS config_changed_at timestamptz NOT NULL DEFAULT now();
-- until now updated_at held exactly this (it moved only with a change of definition)
UPDATE data_sources SET config_changed_at = updated_at WHERE config_changed_at <> updated_at;

CREATE OR REPLACE FUNCTION healthd_touch_config_changed_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.name, NEW.type, NEW.plugin, NEW.config, NEW.enabled, NEW.interval_s, NEW.timeout_s,
        NEW.rise, NEW.fall, NEW.retry_interval_s)
       IS DISTINCT FROM (OLD.name, OLD.type, OLD.plugin, OLD.config, OLD.enabled, OLD.interval_s,
        OLD.timeout_s, OLD.rise, OLD.fall, OLD.retry_interval_s) THEN
        NEW.config_changed_at := clock_timestamp();
        NEW.updated_at := NEW.config_changed_at;
    END IF;
    RETURN NEW;
END $$;

-- still row-level only for UPDATE OF the definition columns: the daemon's status writes
-- never fire it (it sets updated_at itself)
DROP TRIGGER IF EXISTS data_sources_touch ON data_sources;
CREATE TRIGGER data_sources_touch
    BEFORE UPDATE OF name, type, plugin, config, enabled, interval_s, timeout_s, rise, fall,
        retry_interval_s ON data_sources
    FOR EACH ROW EXECUTE FUNCTION healthd_touch_config_changed_at();
DROP FUNCTION IF EXISTS healthd_touch_updated_at();
