"""Apply the numbered SQL files in `migrations/`, in order, once each; and tell whether a
database's schema is the one this healthd knows (`schema_state`).

Safe to run twice (applied versions are recorded) and from two processes at once
(a transaction-level advisory lock serialises them; the loser sees the winner's rows).
Everything one run applies is one transaction: it lands whole or not at all.

A database that holds the original backend's ``data_sources`` table (its columns, none
of healthd's) and no healthd migration yet has that table adopted first, in the same
transaction (healthd/store/adopt.py). A database healthd created, or adopted earlier,
never goes through that step again: the numbered files mean what they always meant.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import psycopg

from healthd.core.errors import DatabaseError
from healthd.core.errors import first_line as first_line  # re-exported: older importers
from healthd.core.schema import Adopted, Applied, SchemaState, judge
from healthd.store import adopt, locks

log = logging.getLogger(__name__)

LOCK_KEY = locks.MIGRATE
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), entry.name, entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


def known() -> dict[int, str]:
    """The migrations this healthd ships: version -> file name."""
    return {m.version: m.name for m in available()}


@dataclass(frozen=True)
class Report:
    """What one `healthd migrate` did."""

    applied: list[str]
    adopted: Adopted | None = None  # set when this run adopted an original table
    newer: list[str] = field(default_factory=list)  # applied by a newer healthd: not ours


def apply(database_url: str) -> list[str]:
    """Apply pending migrations; return the names applied by this call."""
    return apply_report(database_url).applied


def apply_report(database_url: str) -> Report:
    """Apply pending migrations (adopting an original table first, when there is one)."""
    try:
        with _connect(database_url) as conn:
            return _apply(conn)
    except psycopg.OperationalError as exc:
        raise _unreachable(exc) from None
    except psycopg.Error as exc:
        raise DatabaseError(f"migration failed: {first_line(exc)}") from None


def state(database_url: str, timeout: float = 10, details: bool = True) -> SchemaState:
    """`schema_state` of the database at ``database_url``, read on a connection of its own
    (read-only: nothing is created). DatabaseError when it cannot be read."""
    try:
        with _connect(database_url, timeout) as conn:
            conn.read_only = True
            return schema_state(conn, details)
    except psycopg.OperationalError as exc:
        raise _unreachable(exc) from None
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot read the schema's state: {first_line(exc)}") from None


def schema_state(conn: psycopg.Connection[Any], details: bool = True) -> SchemaState:
    """Whether this database's schema is the one this healthd knows: applied, pending and
    unknown (newer) migrations, the one-line problem if any, and (with ``details``) the
    adoption record and whether an original table waits to be adopted."""
    foreign = _foreign(conn)
    applied: list[Applied] | None = None
    if _exists(conn, "schema_migrations") and not foreign:
        rows = conn.execute(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()
        applied = [Applied(v, n, at) for v, n, at in rows]
    original = not applied and adopt.shape(conn) == "original"
    adopted = adopt.record(conn) if details else None
    return judge(applied, known(), foreign=foreign, original_table=original, adopted=adopted)


def _connect(database_url: str, timeout: float = 10) -> psycopg.Connection[Any]:
    return psycopg.connect(database_url, connect_timeout=max(1, round(timeout)))


def _unreachable(exc: psycopg.OperationalError) -> DatabaseError:
    from healthd.core import dburl

    return DatabaseError(f"cannot connect to the database: {dburl.describe(exc)}")


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() != (None,)


def _foreign(conn: psycopg.Connection[Any]) -> str:
    """Why a ``schema_migrations`` table is another tool's (Rails, golang-migrate and
    others use that name too), or "" when it is healthd's or absent."""
    if not _exists(conn, "schema_migrations"):
        return ""
    cols = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT attname, atttypid::regtype::text FROM pg_attribute"
            " WHERE attrelid = 'schema_migrations'::regclass AND attnum > 0 AND NOT attisdropped"
        )
    }
    if cols.get("version") == "integer" and "name" in cols and "applied_at" in cols:
        return ""
    return "the database's schema_migrations table is another tool's, not healthd's"


def _apply(conn: psycopg.Connection[Any]) -> Report:
    applied_now: list[str] = []
    adopted: Adopted | None = None
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        foreign = _foreign(conn)
        if foreign:
            raise DatabaseError(f"{foreign}; healthd migrate cannot use this database")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY 1").fetchall()
        done = {v for v, _ in rows}
        ours = known()
        newer = [n for v, n in rows if v not in ours]
        if not done and adopt.shape(conn) == "original":
            adopted = adopt.adopt(conn)
            log.info("adopted the original data_sources table (%d rows)", adopted.rows)
        for mig in available():
            if mig.version in done:
                continue
            conn.execute(mig.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (mig.version, mig.name),
            )
            applied_now.append(mig.name)
            log.info("applied migration %s", mig.name)
    return Report(applied_now, adopted, newer)
