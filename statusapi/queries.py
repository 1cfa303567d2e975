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
EVENT_COLUMNS = "id, source_id, event, from_status, to_status, at, error_message, results"


# The Source shape's columns (healthd/fields.py) and what its computed "pending" object
# is made of. Rows come back as tuples and are rendered in Python: PostgreSQL's
# json_build_object/to_char cost more server time per row than psycopg's parsing of the
# plain columns (P6). shapes.source reads them by name through SOURCE_INDEX.
_SOURCE_EXPRS: dict[str, str] = {
    **{n: n for n in fields.API_PLAIN},
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
