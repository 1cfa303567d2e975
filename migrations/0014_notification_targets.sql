-- Notification targets beyond HTTP webhooks (docs/notifications.md): a target whose
-- format is 'apprise' is any URL the Apprise library speaks (mailto://, ntfy://, ...), sent
-- through the same outbox. A target's URL may be given by reference instead
-- (url_ref: {"env": NAME} or {"file": PATH}, read by the daemon at send time), and is then
-- not stored at all: exactly one of url and url_ref is set.
ALTER TABLE webhooks ALTER COLUMN url DROP NOT NULL;
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS url_ref jsonb;
DO $$
BEGIN
    ALTER TABLE webhooks ADD CONSTRAINT webhooks_url_check
        CHECK ((url IS NULL) <> (url_ref IS NULL));
EXCEPTION WHEN duplicate_object THEN
    NULL;
END $$;

-- the formats of healthd/notify/formats.py (tests/integration/test_schema.py holds them)
ALTER TABLE webhooks DROP CONSTRAINT IF EXISTS webhooks_format_check;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_format_check
    CHECK (format IN ('healthd', 'slack', 'standard', 'apprise'));
