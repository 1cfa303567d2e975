"""The webhook outbox: deliveries are claimed under a lease, then marked done, retried
later or given up."""

from __future__ import annotations

from typing import Any

from healthd.store.writer import Writer


class Outbox:
    def __init__(self, writer: Writer) -> None:
        self._db = writer

    async def claim(
        self, limit: int, lease_s: float, per_target: int, busy: list[int]
    ) -> list[dict[str, Any]]:
        """Take due deliveries, oldest first, at most ``per_target`` of one target and at
        most ``limit`` in all, of targets no sender has a batch of in flight: the target is
        leased with its deliveries (webhooks.busy_until, migration 0017), so that a second
        daemon sharing the outbox leaves it alone too; ``busy`` are this sender's own. The
        lease (next_attempt_at pushed ahead) keeps another daemon from sending the same one
        while this one is trying. A target leased with nothing claimed (its deliveries
        locked meanwhile) comes back as a row with ``id`` None: ``release`` it."""
        return await self._db.run(
            "WITH t AS (UPDATE webhooks w SET busy_until = now() + make_interval(secs => %(lease)s)"
            " WHERE w.id IN (SELECT x.id FROM webhooks x WHERE x.id <> ALL(%(busy)s)"
            "   AND (x.busy_until IS NULL OR x.busy_until <= now()) AND EXISTS (SELECT 1"
            "   FROM webhook_outbox d WHERE d.webhook_id = x.id AND d.delivered_at IS NULL"
            "   AND d.gave_up_at IS NULL AND d.next_attempt_at <= now())"
            "  ORDER BY (SELECT min(d.id) FROM webhook_outbox d WHERE d.webhook_id = x.id"
            "   AND d.delivered_at IS NULL AND d.gave_up_at IS NULL"
            "   AND d.next_attempt_at <= now()) LIMIT %(targets)s FOR UPDATE SKIP LOCKED)"
            # rechecked on the row's newest version: a lease committed meanwhile holds
            " AND (w.busy_until IS NULL OR w.busy_until <= now())"
            " RETURNING w.id, w.url, w.url_ref, w.secret_ref, w.format, w.busy_until),"
            " c AS (UPDATE webhook_outbox o SET"
            "  next_attempt_at = now() + make_interval(secs => %(lease)s),"
            "  attempts = o.attempts + 1 WHERE o.id IN ("
            "  SELECT id FROM webhook_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL"
            "  AND next_attempt_at <= now() AND id IN ("
            # a locking clause may not sit beside the window function: ranked one level down
            "   SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY webhook_id ORDER BY id)"
            "    AS n FROM webhook_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL"
            "    AND next_attempt_at <= now() AND webhook_id IN (SELECT id FROM t)) ranked"
            "    WHERE n <= %(per)s)"
            "  ORDER BY id FOR UPDATE SKIP LOCKED)"
            " RETURNING o.id, o.webhook_id, o.delivery_id, o.event, o.payload, o.attempts)"
            " SELECT c.id, t.id AS webhook_id, c.delivery_id, c.event, c.payload, c.attempts,"
            " t.url, t.url_ref, t.secret_ref, t.format, t.busy_until"
            " FROM t LEFT JOIN c ON c.webhook_id = t.id ORDER BY c.id",
            {
                "lease": lease_s,
                "busy": busy,
                "per": per_target,
                "targets": max(1, limit // max(per_target, 1)),
            },
        )

    async def release(self, webhook_id: int, lease: Any) -> None:
        """The target's batch is done: its next one may be claimed, by any daemon (only
        this lease's: one that ran out and was taken by another sender stays theirs)."""
        await self._db.run(
            "UPDATE webhooks SET busy_until = NULL WHERE id = %s AND busy_until = %s",
            (webhook_id, lease),
        )

    async def done(self, outbox_id: int, status: int | None = None) -> None:
        await self._db.run(
            "UPDATE webhook_outbox SET delivered_at = now(), last_error = NULL, last_status = %s"
            " WHERE id = %s",
            (status, outbox_id),
        )

    async def failed(
        self, outbox_id: int, error: str, retry_in: float | None, status: int | None = None
    ) -> None:
        # last_status: the receiver's HTTP status, NULL when none answered (the delivery log)
        if retry_in is None:
            await self._db.run(
                "UPDATE webhook_outbox SET gave_up_at = now(), last_error = %s, last_status = %s"
                " WHERE id = %s",
                (error, status, outbox_id),
            )
        else:
            await self._db.run(
                "UPDATE webhook_outbox SET next_attempt_at = now() + make_interval(secs => %s),"
                " last_error = %s, last_status = %s WHERE id = %s",
                (retry_in, error, status, outbox_id),
            )
