"""The delivery log's one query, read by `healthd webhooks deliveries`
(healthd/store/catalog.py) and by `GET /api/v1/webhooks/deliveries`
(statusapi/data/queries.py): the same rows, states and filters for both. Only the SQL text
lives here; each side runs it on its own connection."""

from __future__ import annotations

from typing import Any

STATE = (
    "CASE WHEN o.delivered_at IS NOT NULL THEN 'delivered'"
    " WHEN o.gave_up_at IS NOT NULL THEN 'given_up' ELSE 'pending' END"
)


def query(
    webhook_id: int | None, failed: bool, before_id: int | None, limit: int
) -> tuple[str, dict[str, Any]]:
    """The SELECT (newest first) and its parameters."""
    where = ["TRUE"]
    if webhook_id is not None:
        where.append("o.webhook_id = %(webhook)s")
    if failed:
        # retrying (attempted, not delivered) or given up
        where.append("(o.gave_up_at IS NOT NULL OR (o.delivered_at IS NULL AND o.attempts > 0))")
    if before_id is not None:
        where.append("o.id < %(before)s")
    sql = (
        "SELECT o.id, o.delivery_id::text AS delivery_id, o.webhook_id, w.url, w.url_ref,"
        " w.format,"
        f" o.event, o.history_id, o.payload->>'source_id' AS source_id, {STATE} AS state,"
        " o.attempts, o.last_status, o.last_error,"
        " CASE WHEN o.delivered_at IS NULL AND o.gave_up_at IS NULL"
        "  THEN o.next_attempt_at END AS next_attempt_at,"
        " o.delivered_at, o.gave_up_at, o.created_at"
        " FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id"
        f" WHERE {' AND '.join(where)} ORDER BY o.id DESC LIMIT %(limit)s"
    )
    return sql, {"webhook": webhook_id, "before": before_id, "limit": limit}
