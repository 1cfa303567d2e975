"""Every SQL statement the API runs. All reads; nothing here needs a primary."""

from __future__ import annotations

from typing import Any

from healthd import fields
from healthd.words import CONNECTED
from statusapi.db import fetch_all, fetch_one

# what the original /api/ai/* routes need of their source
AI_COLUMNS = (
    "id, config, enabled, connection_status, test_status, last_tested_at, test_error_message"
)
EVENT_COLUMNS = (
    "id, source_id, event, from_status, to_status, at, error_message, results, maintenance,"
    " suppressed_by"
)


# What the API computes for the Source fields healthd/fields.py marks computed (§11):
# the parents not connected now (skipped for the many sources without parents), and
# whether a maintenance window is open, read once per query (uncorrelated subqueries are
# InitPlans; per row it doubled the cost of a 100-source page).
COMPUTED: dict[str, str] = {
    "unreachable_via": "CASE WHEN cardinality(depends_on) = 0 THEN '{}'::varchar[] ELSE ARRAY("
    " SELECT p.id FROM data_sources p WHERE p.id = ANY (data_sources.depends_on)"
    " AND p.connection_status <> 'connected' ORDER BY p.id) END",
    "in_maintenance": "(SELECT coalesce(bool_or(w.source_ids IS NULL), false)"
    " FROM maintenance_windows w WHERE healthd_window_occurrence(w, now()) @> now())"
    " OR id = ANY (ARRAY(SELECT s FROM maintenance_windows w, unnest(w.source_ids) AS s"
    " WHERE healthd_window_occurrence(w, now()) @> now()))",
}

# The Source shape's columns (healthd/fields.py) and what its computed "pending" object
# is made of. Rows come back as tuples and are rendered in Python: PostgreSQL's
# json_build_object/to_char cost more server time per row than psycopg's parsing of the
# plain columns (P6 in tests/bench/README.md). shapes.source reads them by name through
# SOURCE_INDEX.
_SOURCE_EXPRS: dict[str, str] = {
    **{n: COMPUTED[n] if fields.BY_NAME[n].computed else n for n in fields.API_PLAIN},
    # secret-bearing columns as text: shapes caches their redaction per distinct text
    **{n: f"{n}::text" for n in fields.API_SECRET},
    "pending_status": "pending_status",
    "pending_count": "pending_count",
    "pending_needed": "CASE WHEN pending_status = %(connected)s"
    " THEN coalesce(rise, %(rise)s) ELSE coalesce(fall, %(fall)s) END",
}
SOURCE_INDEX: dict[str, int] = {n: i for i, n in enumerate(_SOURCE_EXPRS)}
SOURCE_SELECT = f"SELECT {', '.join(_SOURCE_EXPRS.values())} FROM data_sources"


def list_source_rows(
    status: list[str] | None,
    plugin: str | None,
    enabled: bool | None,
    after_id: str | None,
    limit: int,
    rise: int,
    fall: int,
) -> list[tuple[Any, ...]]:
    where = []
    params: dict[str, Any] = {
        "rise": rise,
        "fall": fall,
        "connected": CONNECTED,
        "limit": limit,
        "status": status,
        "plugin": plugin,
        "enabled": enabled,
        "after": after_id,
    }
    if status:
        where.append("connection_status = ANY(%(status)s)")
    if plugin:
        where.append("plugin = %(plugin)s")
    if enabled is not None:
        where.append("enabled = %(enabled)s")
    if after_id is not None:
        where.append("id > %(after)s")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return fetch_all(f"{SOURCE_SELECT} {clause} ORDER BY id LIMIT %(limit)s", params, tuples=True)


def get_source_row(source_id: str, rise: int, fall: int) -> tuple[Any, ...] | None:
    return fetch_one(
        f"{SOURCE_SELECT} WHERE id = %(id)s",
        {"id": source_id, "rise": rise, "fall": fall, "connected": CONNECTED},
        tuples=True,
    )


def get_ai_source(source_id: str) -> dict[str, Any] | None:
    return fetch_one(f"SELECT {AI_COLUMNS} FROM data_sources WHERE id = %s", (source_id,))


def source_exists(source_id: str) -> bool:
    return fetch_one("SELECT 1 AS one FROM data_sources WHERE id = %s", (source_id,)) is not None


def source_events(source_id: str, limit: int, before_id: int | None) -> list[dict[str, Any]]:
    if before_id is None:
        return fetch_all(
            f"SELECT {EVENT_COLUMNS} FROM status_history WHERE source_id = %s"
            " ORDER BY id DESC LIMIT %s",
            (source_id, limit),
        )
    return fetch_all(
        f"SELECT {EVENT_COLUMNS} FROM status_history WHERE source_id = %s AND id < %s"
        " ORDER BY id DESC LIMIT %s",
        (source_id, before_id, limit),
    )


def events_after(after_id: int, limit: int) -> list[dict[str, Any]]:
    return fetch_all(
        f"SELECT {EVENT_COLUMNS} FROM status_history WHERE id > %s ORDER BY id LIMIT %s",
        (after_id, limit),
    )


def last_event_id() -> int:
    row = fetch_one("SELECT coalesce(max(id), 0) AS id FROM status_history")
    return int(row["id"]) if row else 0


def summary() -> dict[str, Any]:
    row = fetch_one(
        "SELECT count(*) AS total,"
        " count(*) FILTER (WHERE enabled) AS enabled,"
        " count(*) FILTER (WHERE connection_status = 'connected') AS connected,"
        " count(*) FILTER (WHERE connection_status = 'disconnected') AS disconnected,"
        " count(*) FILTER (WHERE connection_status = 'error') AS error,"
        " count(*) FILTER (WHERE connection_status = 'unknown') AS unknown,"
        " count(*) FILTER (WHERE flapping) AS flapping,"
        " now() AS generated_at FROM data_sources"
    )
    assert row is not None
    return row


def daemon_freshness() -> dict[str, Any]:
    row = fetch_one(
        "SELECT count(*) AS nodes, max(heartbeat_at) AS last_heartbeat_at,"
        " extract(epoch FROM now() - max(heartbeat_at))::float8 AS age_s FROM daemon_nodes"
    )
    assert row is not None
    return row


def daemon_metrics(live_within: float) -> list[dict[str, Any]]:
    return fetch_all(
        "SELECT node_id, metrics FROM daemon_nodes WHERE metrics IS NOT NULL"
        " AND heartbeat_at > now() - make_interval(secs => %s) ORDER BY node_id",
        (live_within,),
    )


def deliveries_pending() -> int:
    row = fetch_one(
        "SELECT count(*) AS n FROM webhook_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL"
    )
    return int(row["n"]) if row else 0


def status_by_plugin() -> list[dict[str, Any]]:
    return fetch_all(
        "SELECT plugin, connection_status, enabled, count(*) AS n,"
        " count(*) FILTER (WHERE flapping) AS flapping"
        " FROM data_sources GROUP BY plugin, connection_status, enabled"
    )


def ping() -> None:
    fetch_one("SELECT 1 AS one")


# -- operations (§11) ------------------------------------------------------------------


def maintenance_windows() -> list[dict[str, Any]]:
    """Windows open now or to come, with their current or next occurrence."""
    return fetch_all(
        "SELECT * FROM (SELECT w.id, w.source_ids, w.starts_at, w.ends_at, w.every_dow,"
        " to_char(w.every_time, 'HH24:MI') AS every_time, w.tz,"
        " extract(epoch FROM w.duration)::float8 AS duration_s, w.reason,"
        " lower(o.r) AS current_start, upper(o.r) AS current_end, o.r @> now() AS active"
        " FROM maintenance_windows w, LATERAL (SELECT healthd_window_occurrence(w, now()) AS r) o"
        ") x WHERE current_start IS NOT NULL ORDER BY current_start, id"
    )


def deliveries(
    webhook_id: int | None, failed: bool, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    where = ["TRUE"]
    if webhook_id is not None:
        where.append("o.webhook_id = %(webhook)s")
    if failed:
        where.append("(o.gave_up_at IS NOT NULL OR (o.delivered_at IS NULL AND o.attempts > 0))")
    if before_id is not None:
        where.append("o.id < %(before)s")
    return fetch_all(
        "SELECT o.id, o.delivery_id::text AS delivery_id, o.webhook_id, w.url, w.format, o.event,"
        " o.history_id, o.payload->>'source_id' AS source_id,"
        " CASE WHEN o.delivered_at IS NOT NULL THEN 'delivered'"
        "  WHEN o.gave_up_at IS NOT NULL THEN 'given_up' ELSE 'pending' END AS state,"
        " o.attempts, o.last_status, o.last_error,"
        " CASE WHEN o.delivered_at IS NULL AND o.gave_up_at IS NULL"
        "  THEN o.next_attempt_at END AS next_attempt_at,"
        " o.delivered_at, o.gave_up_at, o.created_at"
        " FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id"
        f" WHERE {' AND '.join(where)} ORDER BY o.id DESC LIMIT %(limit)s",
        {"webhook": webhook_id, "before": before_id, "limit": limit},
    )


def maintenance_spans(source_id: str, since: float, until: float) -> list[tuple[float, float]]:
    """The source's maintenance windows overlapping [since, until) (epochs), clipped to it,
    as epoch pairs in order: the time uptime counts apart (README: Maintenance windows)."""
    rows = fetch_all(
        "SELECT extract(epoch FROM greatest(lower(r), lo))::float8 AS s,"
        " extract(epoch FROM least(upper(r), hi))::float8 AS e"
        " FROM (SELECT to_timestamp(%(since)s) AS lo, to_timestamp(%(until)s) AS hi) b,"
        " maintenance_windows w, healthd_window_spans(w, b.lo, b.hi) AS r"
        " WHERE w.source_ids IS NULL OR %(id)s = ANY (w.source_ids) ORDER BY 1",
        {"id": source_id, "since": since, "until": until},
    )
    return [(float(r["s"]), float(r["e"])) for r in rows]
