"""A daemon never runs against a schema it does not know: on a database never migrated (the
original backend's table not adopted yet, say) or migrated by a newer healthd, `healthd
run` says so in one line naming `healthd migrate`, keeps silent while it waits (no job
runs, so nothing fails once a second), and starts by itself once the schema is known;
/readyz answers 503 with the same reason, and `healthd migrate --status` exits 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd.core.schema import MIGRATE
from healthd.local import embedded
from healthd.store import migrate
from statusapi import create_app
from tests.fix_db import status
from tests.fix_original import original_database
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target

pytestmark = pytest.mark.slow

FUTURE = "9999_from_a_newer_healthd.sql"


def sessions(pg_cluster: embedded.Cluster, dbname: str) -> int:
    """Connections made to ``dbname`` so far (each look of the gate is one), counted from
    another database so that counting does not count itself."""
    with psycopg.connect(pg_cluster.url(), autocommit=True) as admin:
        admin.execute("SELECT pg_stat_clear_snapshot()")
        row = admin.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", (dbname,)
        ).fetchone()
    return int(row[0]) if row else 0


def migrate_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "healthd", "--database-url", url, "migrate", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def waiting_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if MIGRATE in line]


def test_daemon_waits_quietly_on_unmigrated_and_newer_schemas(
    pg_cluster: embedded.Cluster, db_url: str, tmp_path: Path, target: Target
) -> None:
    # the original backend's own table, not adopted yet: the issue's `healthd run` there
    bare_url = original_database(pg_cluster)
    bare = bare_url.rsplit("/", 1)[1].split("?")[0]
    newer_db = db_url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, %s)", (FUTURE,))
    d_bare = DaemonProcess(bare_url, tmp_path / "bare.log")
    d_newer = DaemonProcess(db_url, tmp_path / "newer.log")
    try:
        wait_for(lambda: waiting_lines(d_bare.log()), what="the bare database's one line")
        wait_for(lambda: waiting_lines(d_newer.log()), what="the newer database's one line")
        # two more looks at each schema (one connection each, every few seconds): long
        # enough for the former once-a-second failures to have shown up many times
        looked = {bare: sessions(pg_cluster, bare), newer_db: sessions(pg_cluster, newer_db)}
        wait_for(
            lambda: all(sessions(pg_cluster, n) >= s + 2 for n, s in looked.items()),
            timeout=30,
            interval=0.5,
            what="two more looks at each schema",
        )
        for d, words in (
            (d_bare, "original data_sources table, not adopted yet"),
            (d_newer, FUTURE),
        ):
            log = d.log()
            lines = waiting_lines(log)
            assert len(lines) == 1 and words in lines[0], log
            assert len(log.splitlines()) == 1, log  # nothing else: no job ran
            assert "Health check service started" not in log and "Traceback" not in log

        # the newer one stops cleanly while it waits
        assert d_newer.stop() == 0

        # `healthd migrate` adopts the table: the waiting daemon starts by itself
        assert migrate_cli(bare_url).returncode == 0
        with psycopg.connect(bare_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO data_sources (id, name, plugin, config) VALUES ('web', 'web',"
                " 'http', %s)",
                (json.dumps({"url": target.url}),),
            )
            wait_for(lambda: status(conn, "web") == "connected", what="probing after migrate")
        log = d_bare.log()
        assert "database schema is the one this healthd knows: starting" in log
        assert len(waiting_lines(log)) == 1 and "failed" not in log, log
        assert d_bare.stop() == 0
    finally:
        d_bare.stop()
        d_newer.stop()


def test_readyz_and_migrate_status_name_the_reason(
    pg_cluster: embedded.Cluster, db_url: str
) -> None:
    bare = "gate_ready_bare"
    embedded.create_database(pg_cluster.url(), bare)
    cases = {pg_cluster.url(bare): ("never migrated", "never migrated")}
    # /readyz does not tell an original table from none; --status does
    cases[original_database(pg_cluster)] = ("never migrated", "original data_sources table")
    with psycopg.connect(db_url, autocommit=True) as conn:
        last = max(migrate.known())
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", (last,))
        behind = f"1 migration(s) behind this healthd ({migrate.known()[last]} pending)"
        cases[db_url] = (behind, behind)
    newer = "gate_ready_newer"
    embedded.create_database(pg_cluster.url(), newer)
    migrate.apply(pg_cluster.url(newer))
    with psycopg.connect(pg_cluster.url(newer), autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, %s)", (FUTURE,))
        conn.execute("INSERT INTO daemon_nodes (node_id, hostname, pid) VALUES ('n', 'h', 1)")
    future = f"migrated by a newer healthd's {MIGRATE} ({FUTURE} applied"
    cases[pg_cluster.url(newer)] = (future, future)
    for url, (words, status_words) in cases.items():
        app = create_app({"DATABASE_URL": url})
        try:
            r = app.test_client().get("/readyz")
            body: dict[str, Any] = r.get_json()
            assert r.status_code == 503 and r.headers["Retry-After"] == "5", body
            assert body["error"]["code"] == "schema_unknown"
            assert words in body["error"]["message"] and MIGRATE in body["error"]["message"]
        finally:
            if app.extensions.get("healthd_pool"):
                app.extensions["healthd_pool"].close()
        proc = migrate_cli(url, "--status")
        assert proc.returncode == 1 and status_words in proc.stdout, proc.stdout + proc.stderr
    # `healthd migrate` of this version has nothing to apply there: no failure, a warning
    proc = migrate_cli(pg_cluster.url(newer))
    assert (proc.returncode, proc.stdout) == (0, "applied 0 migration(s)\n")
    assert proc.stderr == (
        f"healthd: warning: {FUTURE} applied by a newer healthd: this healthd's daemon waits"
        " until it is upgraded\n"
    )
    # nothing was created by looking
    with psycopg.connect(pg_cluster.url(bare)) as conn:
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)


def test_workers_wait_under_one_line(pg_cluster: embedded.Cluster, tmp_path: Path) -> None:
    bare = "gate_workers_bare"
    embedded.create_database(pg_cluster.url(), bare)
    d = DaemonProcess(pg_cluster.url(bare), tmp_path / "workers.log", HEALTHD_WORKERS="2")
    try:
        wait_for(lambda: waiting_lines(d.log()), what="the supervisor's one line")
        looked = sessions(pg_cluster, bare)
        wait_for(
            lambda: sessions(pg_cluster, bare) >= looked + 1,
            timeout=30,
            interval=0.5,
            what="another look at the schema",
        )
        log = d.log()
        assert len(waiting_lines(log)) == 1 and len(log.splitlines()) == 1, log
    finally:
        assert d.stop() == 0
