"""Apply the numbered SQL files in `migrations/`, in order, once each.

Safe to run twice (applied versions are recorded) and from two processes at once
(a transaction-level advisory lock serialises them; the loser sees the winner's rows).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from healthd.core.errors import DatabaseError
from healthd.core.errors import first_line as first_line  # re-exported: older importers

log = logging.getLogger(__name__)

# An arbitrary constant: "healthd" spelt in hex-ish, shared by every healthd process.
LOCK_KEY = 0x4EA17D
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


def apply(database_url: str) -> list[str]:
    """Apply pending migrations; return the names applied by this call."""
    try:
        with psycopg.connect(database_url, connect_timeout=10) as conn:
            return _apply(conn)
    except psycopg.OperationalError as exc:
        from healthd.core import dburl

        raise DatabaseError(f"cannot connect to the database: {dburl.describe(exc)}") from None
    except psycopg.Error as exc:
        raise DatabaseError(f"migration failed: {first_line(exc)}") from None


def _apply(conn: psycopg.Connection) -> list[str]:
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
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
    return applied_now
