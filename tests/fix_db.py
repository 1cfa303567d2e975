"""The database fixtures: one throwaway PostgreSQL cluster per session, a fresh migrated
database per test (cloned from a template, so it costs tens of milliseconds), and a
cluster of a test's own for tests that stop PostgreSQL."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from healthd.local import embedded
from healthd.store import migrate

TEMPLATE = "healthd_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[embedded.Cluster]:
    with embedded.throwaway("healthd-test-pg-") as cluster:
        embedded.create_database(cluster.url(), TEMPLATE)
        migrate.apply(cluster.url(TEMPLATE))
        # TCP logins need the cluster's password: the API's read-only role gets it too
        cluster.set_password("healthd_readonly")
        yield cluster


@pytest.fixture
def private_cluster() -> Iterator[embedded.Cluster]:
    """A migrated cluster of this test's own, for tests that stop PostgreSQL."""
    with embedded.throwaway("healthd-private-pg-") as cluster:
        migrate.apply(cluster.url())
        cluster.set_password("healthd_readonly")
        yield cluster


@pytest.fixture
def db_url(pg_cluster: embedded.Cluster) -> str:
    """A fresh, migrated database for this test."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    embedded.create_database(pg_cluster.url(), name, template=TEMPLATE)
    return pg_cluster.url(name)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


def add_source(
    db: psycopg.Connection[Any], sid: str, plugin: str = "http", config: Any = None, **cols: Any
) -> None:
    """A row in data_sources as plain SQL writes it (the name is the id unless given); any
    other column by keyword (a dict or list config is stored as JSON)."""
    cols = {"name": sid, **cols}
    if config is not None:
        cols["config"] = config if isinstance(config, str) else json.dumps(config)
    names = ["id", "plugin", *cols]
    db.execute(
        f"INSERT INTO data_sources ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
        [sid, plugin, *cols.values()],
    )


def add_http(db: psycopg.Connection[Any], sid: str, url: str, **cols: Any) -> None:
    """An http source probing ``url``."""
    add_source(db, sid, "http", {"url": url}, **cols)


class DiscardSink:
    """A runtime's sink for unit tests that look only at the runtime's own state."""

    def add_result(self, row: Any) -> None:
        pass

    def add_event(self, source_id: str, event: Any, gen: int | None = None) -> None:
        pass


def source_row(sid: str, status: str = "unknown") -> dict[str, Any]:
    """A data_sources row as the daemon loads it (store.load_sources): a tcp source with
    no history, for building runtime Sources in unit tests."""
    return {
        "id": sid,
        "plugin": "tcp",
        "config": {"host": "127.0.0.1", "port": 9},
        "connection_status": status,
        "pending_status": None,
        "pending_count": 0,
        "pending_results": [],
        "recent_results": "",
        "flapping": False,
        "percent_state_change": 0.0,
    }


# what a test reads back of a source: its debounced status and its transitions, in order
def status(db: psycopg.Connection[Any], sid: str) -> str:
    row = db.execute("SELECT connection_status FROM data_sources WHERE id = %s", (sid,)).fetchone()
    return row[0] if row else ""


def transitions(db: psycopg.Connection[Any], sid: str) -> list[tuple[str, str]]:
    return db.execute(
        "SELECT from_status, to_status FROM status_history WHERE source_id = %s"
        " AND event = 'transition' ORDER BY id",
        (sid,),
    ).fetchall()


def add_many(
    db: psycopg.Connection[Any],
    n: int,
    kinds: tuple[str, ...] = ("service", "database", "ai", "queue", "storage"),
    down_every: int = 50,
) -> None:
    """``n`` sources in one statement (ids s1..sN, named 'Source N', typed round-robin
    over ``kinds``), connected for a day except every ``down_every``-th in error, each
    with one transition so its day bar has days."""
    db.execute(
        "INSERT INTO data_sources (id, name, type, plugin, config, connection_status,"
        " created_at, latency_ms, last_tested_at, status_changed_at, test_status)"
        " SELECT 's' || g, 'Source ' || g, (%s::text[])[1 + g %% cardinality(%s::text[])],"
        " 'http', jsonb_build_object('url', 'http://127.0.0.1:9/' || g),"
        " CASE WHEN g %% %s = 0 THEN 'error' ELSE 'connected' END,"
        " now() - interval '3 days', 12.5, now(), now() - interval '1 day', 'success'"
        " FROM generate_series(1, %s) g",
        (list(kinds), list(kinds), down_every, n),
    )
    db.execute(
        "INSERT INTO status_history (source_id, from_status, to_status, at)"
        " SELECT id, 'unknown', connection_status, now() - interval '1 day' FROM data_sources"
        " WHERE id ~ '^s[0-9]+$'"
    )
