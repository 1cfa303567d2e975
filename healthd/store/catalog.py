"""Every SQL statement the CLI runs: source and webhook management, status reads.

The daemon's SQL lives in healthd/store/ and the API's in statusapi/data/queries.py; this module is
the operator's side of the table.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from healthd.config.sources import SourceSpec
from healthd.core import dburl, dependencies, fields, maintenance
from healthd.core.errors import ConfigError, DatabaseError, NotFound, first_line
from healthd.store import deliverylog, retention

COLUMNS = fields.OPERATOR
STATUS_COLUMNS = ", ".join(fields.STATUS)


@contextlib.contextmanager
def connect(url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection whose failures become one-line DatabaseErrors."""
    try:
        conn = psycopg.connect(url, connect_timeout=10, row_factory=dict_row)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to the database: {dburl.describe(exc)}") from None
    try:
        with conn:
            yield conn
    except psycopg.errors.UndefinedTable:
        raise DatabaseError("the schema is missing: run `healthd migrate` first") from None
    except psycopg.Error as exc:
        raise DatabaseError(f"database error: {first_line(exc)}") from None


def _row(spec: SourceSpec) -> tuple[Any, ...]:
    return tuple(_value(spec, c) for c in COLUMNS)


def _value(spec: SourceSpec, column: str) -> Any:
    if column == "config":
        return Jsonb(spec.config)
    if column == "depends_on":
        return list(spec.depends_on)  # psycopg adapts lists, not tuples, to arrays
    return getattr(spec, column)


def _check_dependencies(
    conn: psycopg.Connection[dict[str, Any]],
    specs: list[SourceSpec],
    keep_stored: bool = True,
    where: dict[str, str] | None = None,
) -> None:
    """The stored graph with ``specs`` put in: parents exist, no cycle. Locks the table
    against a concurrent change of the graph until this transaction ends. Without a
    dependency among ``specs`` no edge is added, so neither problem can arise."""
    if not any(s.depends_on for s in specs):
        return
    conn.execute("LOCK TABLE data_sources IN SHARE ROW EXCLUSIVE MODE")
    graph: dict[str, list[str]] = {}
    if keep_stored:
        for r in conn.execute("SELECT id, depends_on FROM data_sources"):
            graph[r["id"]] = list(r["depends_on"] or [])
    for spec in specs:
        graph[spec.id] = list(spec.depends_on)
    dependencies.check(graph, [s.id for s in specs if s.depends_on], where)


def list_sources(url: str) -> list[dict[str, Any]]:
    with connect(url) as conn:
        return conn.execute(
            f"SELECT {', '.join(COLUMNS)}, {STATUS_COLUMNS} FROM data_sources ORDER BY id"
        ).fetchall()


def get_source(url: str, source_id: str) -> dict[str, Any]:
    with connect(url) as conn:
        row = conn.execute(
            f"SELECT {', '.join(COLUMNS)}, {STATUS_COLUMNS} FROM data_sources WHERE id = %s",
            (source_id,),
        ).fetchone()
    if row is None:
        raise NotFound(f"no source with id {source_id!r}")
    return row


def add_source(url: str, spec: SourceSpec) -> None:
    with connect(url) as conn:
        _check_dependencies(conn, [spec])
        try:
            conn.execute(
                f"INSERT INTO data_sources ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(COLUMNS))})",
                _row(spec),
            )
        except psycopg.errors.UniqueViolation:
            raise DatabaseError(f"a source with id {spec.id!r} already exists") from None


def update_source(url: str, spec: SourceSpec) -> None:
    sets = ", ".join(f"{c} = %s" for c in COLUMNS[1:])
    with connect(url) as conn:
        _check_dependencies(conn, [spec])
        cur = conn.execute(
            f"UPDATE data_sources SET {sets}, updated_at = now() WHERE id = %s",
            (*_row(spec)[1:], spec.id),
        )
        if cur.rowcount == 0:
            raise NotFound(f"no source with id {spec.id!r}")


def remove_source(url: str, source_id: str) -> None:
    with connect(url) as conn:
        conn.execute("LOCK TABLE data_sources IN SHARE ROW EXCLUSIVE MODE")
        children = [
            r["id"]
            for r in conn.execute(
                "SELECT id FROM data_sources WHERE %s = ANY(depends_on) ORDER BY id", (source_id,)
            )
        ]
        if children:
            raise DatabaseError(
                f"source {source_id!r} is a dependency of {', '.join(children)}:"
                " take it out of their depends_on first"
            )
        if conn.execute("DELETE FROM data_sources WHERE id = %s", (source_id,)).rowcount == 0:
            raise NotFound(f"no source with id {source_id!r}")


def set_enabled(url: str, source_id: str, enabled: bool) -> None:
    with connect(url) as conn:
        cur = conn.execute(
            "UPDATE data_sources SET enabled = %s, updated_at = now() WHERE id = %s",
            (enabled, source_id),
        )
        if cur.rowcount == 0:
            raise NotFound(f"no source with id {source_id!r}")


def import_sources(
    url: str, specs: list[SourceSpec], prune: bool, where: dict[str, str] | None = None
) -> dict[str, int]:
    """Upsert every spec in one transaction (COPY into a temp table, then one
    INSERT ... ON CONFLICT), optionally deleting the sources not named. Dependencies are
    checked across the whole file (and the stored sources it keeps) first."""
    cols = ", ".join(COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[1:])
    changed = " OR ".join(f"d.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in COLUMNS[1:])
    with connect(url) as conn, conn.transaction():
        _check_dependencies(conn, specs, keep_stored=not prune, where=where)
        conn.execute(
            "CREATE TEMP TABLE import_sources (LIKE data_sources INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        try:
            with conn.cursor().copy(f"COPY import_sources ({cols}) FROM STDIN") as copy:
                for spec in specs:
                    copy.write_row(_row(spec))
        except psycopg.errors.DataError as exc:
            # validation refuses what it knows PostgreSQL would; anything left still names
            # the entry and the field, from COPY's "line N, column C" context
            raise _copy_refusal(exc, specs) from None
        before = conn.execute("SELECT count(*) AS n FROM data_sources").fetchone() or {"n": 0}
        upserted = conn.execute(
            f"INSERT INTO data_sources AS d ({cols}) SELECT {cols} FROM import_sources "
            f"ON CONFLICT (id) DO UPDATE SET {updates}, updated_at = now() WHERE {changed}"
        ).rowcount
        pruned = 0
        if prune:
            pruned = conn.execute(
                "DELETE FROM data_sources d WHERE NOT EXISTS "
                "(SELECT 1 FROM import_sources i WHERE i.id = d.id)"
            ).rowcount
        after = conn.execute("SELECT count(*) AS n FROM data_sources").fetchone() or {"n": 0}
    added = after["n"] + pruned - before["n"]
    return {
        "added": added,
        "updated": upserted - added,
        "removed": pruned,
        "unchanged": len(specs) - upserted,
    }


def _copy_refusal(exc: psycopg.Error, specs: list[SourceSpec]) -> DatabaseError:
    context = exc.diag.context or ""
    m = re.search(r"line (\d+)(?:, column (\w+))?", context)
    problem = exc.diag.message_primary or "refused"
    if not m:
        return DatabaseError(f"the database refused the import: {problem}")
    n = int(m.group(1))
    sid = specs[n - 1].id if 0 < n <= len(specs) else "?"
    return DatabaseError(f"entry {n} (id {sid!r}): {m.group(2) or 'a field'}: {problem}")


def export_sources(url: str) -> list[dict[str, Any]]:
    with connect(url) as conn:
        rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM data_sources ORDER BY id").fetchall()
    return [{k: v for k, v in r.items() if v is not None and v != []} for r in rows]


# -- webhooks ------------------------------------------------------------------------


def add_webhook(url: str, target: str, secret_ref: dict[str, str] | None, events: list[str]) -> int:
    with connect(url) as conn:
        row = conn.execute(
            "INSERT INTO webhooks (url, secret_ref, events) VALUES (%s, %s, %s) RETURNING id",
            (target, Jsonb(secret_ref) if secret_ref else None, events),
        ).fetchone()
    assert row is not None
    return int(row["id"])


def list_webhooks(url: str) -> list[dict[str, Any]]:
    with connect(url) as conn:
        return conn.execute(
            "SELECT w.id, w.url, w.url_ref, w.secret_ref, w.events, w.enabled, w.created_at,"
            " w.to_statuses, w.source_ids, w.format,"
            " count(o.id) FILTER (WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL)"
            " AS pending,"
            " count(o.id) FILTER (WHERE o.gave_up_at IS NOT NULL) AS failed"
            " FROM webhooks w LEFT JOIN webhook_outbox o ON o.webhook_id = w.id"
            " GROUP BY w.id ORDER BY w.id"
        ).fetchall()


def get_webhook(url: str, webhook_id: int) -> dict[str, Any]:
    """One target, as the sender reads it (healthd/store/outbox.py's claim)."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT id, url, url_ref, secret_ref, format FROM webhooks WHERE id = %s",
            (webhook_id,),
        ).fetchone()
    if row is None:
        raise NotFound(f"no webhook with id {webhook_id}")
    return row


def remove_webhook(url: str, webhook_id: int) -> None:
    with connect(url) as conn:
        if conn.execute("DELETE FROM webhooks WHERE id = %s", (webhook_id,)).rowcount == 0:
            raise NotFound(f"no webhook with id {webhook_id}")


# -- webhook routing and the delivery log --------------------------------------------


def add_routed_webhook(
    url: str,
    target: str | None,
    secret_ref: dict[str, str] | None,
    events: list[str],
    to_statuses: list[str] | None,
    source_ids: list[str] | None,
    fmt: str,
    url_ref: dict[str, str] | None = None,
) -> int:
    """A target; ``target`` is its URL, or None when ``url_ref`` names where the daemon
    reads it (then the URL is never stored)."""
    with connect(url) as conn:
        _require_sources(conn, source_ids or [], "--sources")
        row = conn.execute(
            "INSERT INTO webhooks (url, url_ref, secret_ref, events, to_statuses, source_ids,"
            " format) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                target,
                Jsonb(url_ref) if url_ref else None,
                Jsonb(secret_ref) if secret_ref else None,
                events,
                to_statuses,
                source_ids,
                fmt,
            ),
        ).fetchone()
    assert row is not None
    return int(row["id"])


def _require_sources(conn: psycopg.Connection[dict[str, Any]], ids: list[str], field: str) -> None:
    if not ids:
        return
    found = {
        r["id"] for r in conn.execute("SELECT id FROM data_sources WHERE id = ANY(%s)", (ids,))
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raise ConfigError(field, f"no source with id {missing[0]!r}")


def list_deliveries(
    url: str, webhook_id: int | None, failed: bool, limit: int
) -> list[dict[str, Any]]:
    sql, args = deliverylog.query(webhook_id, failed, None, limit)
    with connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def redeliver(url: str, delivery: str) -> dict[str, Any]:
    """Queue a delivery again (same delivery id, a fresh round of attempts); ``delivery``
    is the outbox row's id or its delivery id (the X-Healthd-Delivery UUID)."""
    column = "id" if delivery.isdigit() else "delivery_id::text"
    with connect(url) as conn:
        row = conn.execute(
            "UPDATE webhook_outbox SET delivered_at = NULL, gave_up_at = NULL, attempts = 0,"
            f" next_attempt_at = now() WHERE {column} = %s RETURNING id, delivery_id",
            (delivery.lower(),),
        ).fetchone()
    if row is None:
        raise NotFound(f"no delivery {delivery!r}")
    return row


# -- maintenance windows -------------------------------------------------------------

MAINTENANCE_COLUMNS = (
    "w.id, w.source_ids, w.starts_at, w.ends_at, w.every_dow, w.every_time, w.tz, w.duration,"
    " w.reason, w.created_at, lower(healthd_window_occurrence(w, now())) AS next_start,"
    " upper(healthd_window_occurrence(w, now())) AS next_end"
)


def window_of(row: dict[str, Any]) -> maintenance.Window:
    ids = row["source_ids"]
    return maintenance.Window(
        source_ids=tuple(ids) if ids is not None else None,
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        every_dow=row["every_dow"],
        every_time=row["every_time"],
        tz=row["tz"],
        duration=row["duration"],
        reason=row["reason"],
        id=row["id"],
    )


def add_maintenance(
    url: str, w: maintenance.Window, now: datetime, zone_field: str = "--tz"
) -> int:
    """Store a window unless it overlaps another one for the same source (checked under a
    lock, so two operators adding at once cannot both slip past the check), or names a
    time zone the database server does not know (``zone_field``: the option it came from)."""
    with connect(url) as conn, conn.transaction():
        if w.recurring:
            _require_zone(conn, w.tz, zone_field)
        conn.execute("LOCK TABLE maintenance_windows IN SHARE ROW EXCLUSIVE MODE")
        _require_sources(conn, list(w.source_ids or []), "--source")
        # a stored window the server cannot evaluate is never open (migrations/0016), so
        # nothing can overlap it
        stored = conn.execute(
            f"SELECT {MAINTENANCE_COLUMNS} FROM maintenance_windows w"
            " WHERE healthd_window_evaluable(w)"
        )
        for other in map(window_of, stored):
            if not maintenance.shares_sources(w, other):
                continue
            try:
                both = maintenance.overlap(w, other, now)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(
                    "window",
                    f"cannot check it against window {other.id}: its time zone {other.tz!r}"
                    " is not known here (only to the database server)",
                ) from None
            if both:
                raise ConfigError(
                    "window",
                    f"overlaps window {other.id} ({other.describe()}) from "
                    f"{maintenance.iso(both[0])} to {maintenance.iso(both[1])}"
                    f" for {_shared(w, other)}",
                )
        new = conn.execute(
            "INSERT INTO maintenance_windows (source_ids, starts_at, ends_at, every_dow,"
            " every_time, tz, duration, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            (
                list(w.source_ids) if w.source_ids is not None else None,
                w.starts_at,
                w.ends_at,
                w.every_dow,
                w.every_time,
                w.tz,
                w.duration,
                w.reason,
            ),
        ).fetchone()
    assert new is not None
    return int(new["id"])


def _require_zone(conn: psycopg.Connection[dict[str, Any]], tz: str, field: str) -> None:
    """The server evaluates windows (healthd_window_occurrence), with its own zone data:
    a zone Python knows may still be unknown to it."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = %s) AS known", (tz,)
    ).fetchone()
    if not row or not row["known"]:
        raise ConfigError(field, f"time zone {tz!r} is not known to the database server")


def _shared(a: maintenance.Window, b: maintenance.Window) -> str:
    if a.source_ids is None and b.source_ids is None:
        return "every source"
    ids = sorted(set(a.source_ids or b.source_ids or ()) & set(b.source_ids or a.source_ids or ()))
    return "source " + ", ".join(repr(i) for i in ids)


def list_maintenance(url: str) -> list[dict[str, Any]]:
    with connect(url) as conn:
        return conn.execute(
            f"SELECT {MAINTENANCE_COLUMNS}, healthd_window_occurrence(w, now()) @> now() AS active,"
            " healthd_window_evaluable(w) AS evaluable FROM maintenance_windows w ORDER BY w.id"
        ).fetchall()


def remove_maintenance(url: str, window_id: int) -> None:
    with connect(url) as conn:
        cur = conn.execute("DELETE FROM maintenance_windows WHERE id = %s", (window_id,))
        if cur.rowcount == 0:
            raise NotFound(f"no maintenance window with id {window_id}")


def prune(url: str, age: timedelta) -> retention.Pruned:
    """Everything older than ``age`` by the database's clock (healthd/store/retention.py)."""
    with connect(url) as conn:
        conn.autocommit = True  # each batch commits on its own
        return retention.prune_all(conn, age)
