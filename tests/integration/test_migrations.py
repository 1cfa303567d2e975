from __future__ import annotations

import subprocess
import sys
from typing import Any

import psycopg
import pytest

from healthd.local import embedded
from healthd.store import migrate


def _fresh(pg_cluster: embedded.Cluster, name: str) -> str:
    embedded.create_database(pg_cluster.url(), name)
    return pg_cluster.url(name)


def test_apply_twice_is_a_noop(pg_cluster: embedded.Cluster) -> None:
    url = _fresh(pg_cluster, "mig_twice")
    first = migrate.apply(url)
    assert first == [m.name for m in migrate.available()]
    assert migrate.apply(url) == []
    with psycopg.connect(url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in migrate.available()]


def test_two_processes_at_once(pg_cluster: embedded.Cluster) -> None:
    url = _fresh(pg_cluster, "mig_race")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "healthd", "--database-url", url, "migrate"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    applied = sorted(o[0].strip() for o in outs)
    # exactly one process applied everything; the others found nothing to do
    assert applied[:2] == ["applied 0 migration(s)"] * 2
    assert applied[2].startswith(f"applied {len(migrate.available())} migration(s)")


def test_original_columns_exist(db: psycopg.Connection[Any]) -> None:
    cols = {
        r[0]
        for r in db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'data_sources'"
        )
    }
    original = {
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
    }
    assert original <= cols


def test_readonly_role_selects_but_cannot_write(db: psycopg.Connection[Any], db_url: str) -> None:
    db.execute("INSERT INTO data_sources (id, name, plugin) VALUES ('a', 'A', 'http')")
    ro_url = db_url.replace("postgres@", "healthd_readonly@")
    with psycopg.connect(ro_url, autocommit=True) as ro:
        assert ro.execute("SELECT id FROM data_sources").fetchall() == [("a",)]
        assert ro.execute("SELECT count(*) FROM status_history").fetchone() == (0,)
        for stmt in (
            "UPDATE data_sources SET name = 'x'",
            "DELETE FROM data_sources",
            "INSERT INTO status_history (source_id, from_status, to_status) VALUES ('a','unknown','connected')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ro.execute(stmt)


def test_migrate_cli_reports_unreachable_database() -> None:
    port = embedded.free_port()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "healthd",
            "--database-url",
            f"postgresql://u:hunter2secret@127.0.0.1:{port}/x",
            "migrate",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "cannot connect" in proc.stderr
    assert "hunter2secret" not in proc.stderr + proc.stdout
