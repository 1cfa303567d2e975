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
        """Take due deliveries, oldest first, at most ``per_target`` of one target and none
        of the targets in ``busy`` (this sender's batch for them is still in flight); the
        lease (next_attempt_at pushed ahead) keeps another daemon from sending the same one
        while this one is trying."""
        return await self._db.run(
            "UPDATE webhook_outbox o SET next_attempt_at = now() + make_interval(secs => %s),"
            " attempts = o.attempts + 1"
            " FROM webhooks w WHERE w.id = o.webhook_id AND o.id IN ("
            "  SELECT id FROM webhook_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL"
            "  AND next_attempt_at <= now() AND id IN ("
            # a locking clause may not sit beside the window function: ranked one level down
            "   SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY webhook_id ORDER BY id)"
            "    AS n FROM webhook_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL"
            "    AND next_attempt_at <= now() AND webhook_id <> ALL(%s)) ranked WHERE n <= %s)"
            "  ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING o.id, o.webhook_id, o.delivery_id, o.event, o.payload, o.attempts,"
            " w.url, w.url_ref, w.secret_ref, w.format",
            (lease_s, busy, per_target, limit),
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
