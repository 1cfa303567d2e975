"""Every SQL statement the CLI runs: source and webhook management, status reads.

The daemon's SQL lives in healthd/store/ and the API's in statusapi/queries.py; this module is
the operator's side of the table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from healthd import fields
from healthd.errors import DatabaseError, NotFound, first_line
from healthd.sources import SourceSpec

COLUMNS = fields.OPERATOR
STATUS_COLUMNS = ", ".join(fields.STATUS)


@contextlib.contextmanager
def connect(url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection whose failures become one-line DatabaseErrors."""
    try:
        conn = psycopg.connect(url, connect_timeout=10, row_factory=dict_row)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to the database: {first_line(exc)}") from None
    try:
        with conn:
            yield conn
    except psycopg.errors.UndefinedTable:
        raise DatabaseError("the schema is missing: run `healthd migrate` first") from None
    except psycopg.Error as exc:
        raise DatabaseError(f"database error: {first_line(exc)}") from None


def _row(spec: SourceSpec) -> tuple[Any, ...]:
    return tuple(Jsonb(spec.config) if c == "config" else getattr(spec, c) for c in COLUMNS)


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
        cur = conn.execute(
            f"UPDATE data_sources SET {sets}, updated_at = now() WHERE id = %s",
            (*_row(spec)[1:], spec.id),
        )
        if cur.rowcount == 0:
            raise NotFound(f"no source with id {spec.id!r}")


def remove_source(url: str, source_id: str) -> None:
    with connect(url) as conn:
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


def import_sources(url: str, specs: list[SourceSpec], prune: bool) -> dict[str, int]:
    """Upsert every spec in one transaction (COPY into a temp table, then one
    INSERT ... ON CONFLICT), optionally deleting the sources not named."""
    cols = ", ".join(COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[1:])
    changed = " OR ".join(f"d.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in COLUMNS[1:])
    with connect(url) as conn, conn.transaction():
        conn.execute(
            "CREATE TEMP TABLE import_sources (LIKE data_sources INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        with conn.cursor().copy(f"COPY import_sources ({cols}) FROM STDIN") as copy:
            for spec in specs:
                copy.write_row(_row(spec))
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


def export_sources(url: str) -> list[dict[str, Any]]:
    with connect(url) as conn:
        rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM data_sources ORDER BY id").fetchall()
    return [{k: v for k, v in r.items() if v is not None} for r in rows]


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
            "SELECT w.id, w.url, w.secret_ref, w.events, w.enabled, w.created_at,"
            " count(o.id) FILTER (WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL)"
            " AS pending,"
            " count(o.id) FILTER (WHERE o.gave_up_at IS NOT NULL) AS failed"
            " FROM webhooks w LEFT JOIN webhook_outbox o ON o.webhook_id = w.id"
            " GROUP BY w.id ORDER BY w.id"
        ).fetchall()


def remove_webhook(url: str, webhook_id: int) -> None:
    with connect(url) as conn:
        if conn.execute("DELETE FROM webhooks WHERE id = %s", (webhook_id,)).rowcount == 0:
            raise NotFound(f"no webhook with id {webhook_id}")
