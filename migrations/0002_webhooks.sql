-- Webhook subscribers and their outbox. An outbox row is inserted in the same
-- transaction as the history row it announces, so a committed transition is never
-- left unannounced; the sender delivers at least once.
CREATE TABLE IF NOT EXISTS webhooks (
    id          serial PRIMARY KEY,
    url         text NOT NULL,
    secret_ref  jsonb,                       -- {"env": NAME} or {"file": PATH}; never the secret
    events      text[] NOT NULL DEFAULT ARRAY['transition', 'flapping_started', 'flapping_stopped'],
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS webhook_outbox (
    id              bigserial PRIMARY KEY,
    webhook_id      integer NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    history_id      bigint  NOT NULL REFERENCES status_history(id) ON DELETE CASCADE,
    event           varchar(20) NOT NULL,
    delivery_id     uuid NOT NULL DEFAULT gen_random_uuid(),
    payload         jsonb NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    gave_up_at      timestamptz,
    last_error      text
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due_idx ON webhook_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
