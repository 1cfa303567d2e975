-- A target's batch in flight, seen by every daemon: the sender that claims a target's
-- deliveries leases the target itself until busy_until (healthd/store/outbox.py), so a
-- second daemon sharing the outbox claims none of that target's next deliveries while
-- the first one's batch is still out. Without it each daemon kept only its own batches
-- apart, and N daemons held N batches of one slow target at once.
ALTER TABLE webhooks ADD COLUMN IF NOT EXISTS busy_until timestamptz;
