"""The original backend's data_sources table as its users have it: the seed's DDL in
PostgreSQL's spelling, rows as the backend wrote them, and the statements the backend
goes on running against the table (helpers, no fixtures)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import psycopg

from healthd.local import embedded

SEED_DDL = """
CREATE TABLE data_sources (
    id varchar(50) PRIMARY KEY,
    name varchar(100),
    type varchar(50),
    plugin varchar(100),
    config JSON,
    enabled BOOLEAN DEFAULT true,
    connection_status varchar(20),
    last_tested_at TIMESTAMP,
    test_status varchar(20),
    test_error_message TEXT,
    created_at TIMESTAMP DEFAULT now(),
    updated_at TIMESTAMP DEFAULT now()
)
"""
ORIGINAL_COLUMNS = (
    "id",
    "name",
    "type",
    "plugin",
    "config",
    "enabled",
    "connection_status",
    "last_tested_at",
    "test_status",
    "test_error_message",
    "created_at",
    "updated_at",
)
# what the backend's code runs, as it runs it
BACKEND_SELECT = (
    "SELECT connection_status, last_tested_at, test_status, test_error_message"
    " FROM data_sources WHERE id = %s"
)
BACKEND_INSERT = (
    "INSERT INTO data_sources (id, name, type, plugin, config, enabled)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
)
BACKEND_UPDATE_CONFIG = "UPDATE data_sources SET config = %s, updated_at = NOW() WHERE id = %s"
BACKEND_UPDATE_ENABLED = "UPDATE data_sources SET enabled = %s, updated_at = NOW() WHERE id = %s"

_counter = itertools.count()


def original_database(cluster: embedded.Cluster, rows: Sequence[tuple[Any, ...]] = ()) -> str:
    """A database of its own holding the original table and ``rows`` (all twelve
    columns each, config as a dict or as JSON text); returns its URL."""
    name = f"orig_{os.getpid()}_{next(_counter)}"
    embedded.create_database(cluster.url(), name)
    url = cluster.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED_DDL)
        for row in rows:
            values = [json.dumps(v) if isinstance(v, dict) else v for v in row]
            conn.execute(
                f"INSERT INTO data_sources ({', '.join(ORIGINAL_COLUMNS)})"
                f" VALUES ({', '.join(['%s'] * len(ORIGINAL_COLUMNS))})",
                values,
            )
    return url


def migrate_cli(
    url: str, *args: str, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `healthd migrate` against ``url``; an ``env`` value None unsets it."""
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "healthd", "--database-url", url, "migrate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in full.items() if v is not None},
    )


CATALOG = {
    "columns": "SELECT attname, format_type(atttypid, atttypmod), attnotnull,"
    " pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a LEFT JOIN pg_attrdef d"
    " ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    " WHERE attrelid = 'data_sources'::regclass AND attnum > 0 AND NOT attisdropped"
    " ORDER BY attnum",
    "constraints": "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE conrelid = 'data_sources'::regclass ORDER BY 1",
    "triggers": "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger"
    " WHERE tgrelid = 'data_sources'::regclass AND NOT tgisinternal ORDER BY 1",
    "indexes": "SELECT indexdef FROM pg_indexes WHERE tablename = 'data_sources' ORDER BY 1",
    "options": "SELECT reloptions FROM pg_class WHERE oid = 'data_sources'::regclass",
    "tables": "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    "functions": "SELECT oid::regprocedure::text FROM pg_proc"
    " WHERE pronamespace = 'public'::regnamespace ORDER BY 1",
    "sequences": "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1",
    "migrations": "SELECT version, name FROM schema_migrations ORDER BY 1",
}


def catalog(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """What the schema is made of, for comparing two databases."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for key, sql in CATALOG.items():
            try:
                out[key] = conn.execute(sql).fetchall()
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
                out[key] = []
    return out


def original_rows(url: str) -> dict[str, dict[str, Any]]:
    """Each row's original columns (those the table has), by id."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute("SELECT * FROM data_sources ORDER BY id")
        names = [c.name for c in cur.description or ()]
        return {
            r[0]: {k: v for k, v in zip(names, r, strict=True) if k in ORIGINAL_COLUMNS}
            for r in cur.fetchall()
        }
