"""Dependencies: a child whose parent is down transitions silently with suppressed_by;
unknown ids and cycles are one-line errors that change nothing (add, update, import)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fix_ops import (
    FAST,
    add_source,
    api,
    one_line_error,
    receiver,
    status_of,
    transitions,
)
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target


@pytest.mark.slow
def test_child_behind_a_down_parent_transitions_silently(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, healthd_cli: Any
) -> None:
    parent, child = Target(), Target()
    with receiver() as hook:
        add_source(db, "db", parent.url)
        add_source(db, "app", child.url, depends_on=("db",))
        assert healthd_cli("webhooks", "add", hook.url).returncode == 0
        d = DaemonProcess(db_url, tmp_path / "d.log", **FAST)
        try:
            wait_for(lambda: len(hook.posts) == 2, what="both first transitions sent")
            parent.set("fail")
            wait_for(lambda: status_of(db, "db") == "error", what="the parent down")
            child.set("fail")
            wait_for(lambda: status_of(db, "app") == "error", what="the child down")
            assert transitions(db, "app")[-1] == ("connected", "error", False, ["db"], 0)
            wait_for(
                lambda: [(b["source_id"], b["to"]) for b in hook.bodies()][2:] == [("db", "error")],
                what="the parent's failure sent",
            )
            with api(db_url) as client:
                app = client.get("/api/v1/sources/app").get_json()
                assert (app["depends_on"], app["unreachable_via"]) == (["db"], ["db"])
                assert client.get("/api/v1/sources/db").get_json()["unreachable_via"] == []
                (ev, *_) = client.get("/api/v1/sources/app/events").get_json()["events"]
                assert ev["suppressed_by"] == ["db"]
            # with the parent back, the child's own recovery and its next failure page again
            parent.set("ok")
            wait_for(lambda: status_of(db, "db") == "connected", what="the parent back")
            child.set("ok")
            wait_for(lambda: status_of(db, "app") == "connected", what="the child back")
            child.set("fail")
            wait_for(
                lambda: (
                    ("app", "connected", "error")
                    in [(b["source_id"], b["from"], b["to"]) for b in hook.bodies()]
                ),
                what="the child's own failure sent",
            )
            assert transitions(db, "app")[-1] == ("connected", "error", False, None, 1)
        finally:
            d.stop()
            parent.close()
            child.close()


def _snapshot(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute("SELECT id, depends_on, updated_at FROM data_sources ORDER BY id").fetchall()


def test_unknown_and_cyclic_dependencies_are_refused(
    db: psycopg.Connection[Any], healthd_cli: Any, tmp_path: Path
) -> None:
    http = ("--plugin", "http", "--config", '{"url": "http://127.0.0.1:9/"}')
    assert healthd_cli("sources", "add", "a", *http).returncode == 0
    r = healthd_cli("sources", "add", "b", *http, "--depends-on", "a")
    assert r.returncode == 0, r.stderr
    r = healthd_cli("sources", "add", "c", *http, "--depends-on", "b")
    assert r.returncode == 0, r.stderr
    before = _snapshot(db)
    one_line_error(
        healthd_cli("sources", "add", "d", *http, "--depends-on", "a,ghost"),
        "depends_on: unknown source 'ghost'",
    )
    one_line_error(
        healthd_cli("sources", "update", "a", "--depends-on", "c"),
        "depends_on: dependency cycle a -> c -> b -> a",
    )
    one_line_error(
        healthd_cli("sources", "update", "a", "--depends-on", "a"), "dependency cycle a -> a"
    )
    one_line_error(healthd_cli("sources", "remove", "a"), "'a' is a dependency of b")
    # an import is checked as a whole: entries may name each other, in any order
    entry = {"plugin": "http", "config": {"url": "http://127.0.0.1:9/"}}
    cyclic = {
        "sources": [
            {"id": "x", **entry, "depends_on": ["y"]},
            {"id": "y", **entry, "depends_on": ["z"]},
            {"id": "z", **entry, "depends_on": ["x"]},
        ]
    }
    f = tmp_path / "cyclic.json"
    f.write_text(json.dumps(cyclic))
    one_line_error(
        healthd_cli("sources", "import", str(f)),
        "entry 1 (id 'x'): depends_on: dependency cycle x -> y -> z -> x",
    )
    f.write_text(json.dumps({"sources": [{"id": "x", **entry, "depends_on": ["nowhere"]}]}))
    one_line_error(healthd_cli("sources", "import", str(f)), "unknown source 'nowhere'")
    # --prune keeps only the file: a parent that only the database has is unknown then
    f.write_text(json.dumps({"sources": [{"id": "x", **entry, "depends_on": ["a"]}]}))
    one_line_error(healthd_cli("sources", "import", "--prune", str(f)), "unknown source 'a'")
    assert _snapshot(db) == before
    good = {
        "sources": [
            {"id": "y", **entry, "depends_on": ["x", "a"]},
            {"id": "x", **entry},
        ]
    }
    f.write_text(json.dumps(good))
    assert healthd_cli("sources", "import", str(f)).returncode == 0
    assert db.execute("SELECT depends_on FROM data_sources WHERE id = 'y'").fetchone() == (
        ["x", "a"],
    )
    exported = json.loads(healthd_cli("sources", "export").stdout)["sources"]
    assert {s["id"]: s.get("depends_on") for s in exported}["y"] == ["x", "a"]
    assert healthd_cli("sources", "update", "c", "--depends-on", "").returncode == 0
    assert db.execute("SELECT depends_on FROM data_sources WHERE id = 'c'").fetchone() == ([],)


@pytest.mark.slow
def test_a_disabled_parent_counts_as_absent(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """A parent added disabled is never probed and stays unknown: it must not silence its
    children for ever. Enabled, and down, it silences them again."""
    parent, child = Target(), Target()
    parent.set("fail")
    add_source(db, "db", parent.url)
    db.execute("UPDATE data_sources SET enabled = false WHERE id = 'db'")
    add_source(db, "app", child.url, depends_on=("db",))
    d = DaemonProcess(db_url, tmp_path / "d.log", **FAST)
    try:
        wait_for(lambda: status_of(db, "app") == "connected", what="the child up")
        child.set("fail")
        wait_for(lambda: status_of(db, "app") == "error", what="the child down")
        # probed, and its failure is its own: not suppressed by the disabled parent
        assert transitions(db, "app")[-1][:4] == ("connected", "error", False, None)
        assert status_of(db, "db") == "unknown"
        assert parent.count("fail") == 0
        with api(db_url) as client:
            app = client.get("/api/v1/sources/app").get_json()
            assert (app["depends_on"], app["unreachable_via"]) == (["db"], [])
            (ev, *_) = client.get("/api/v1/sources/app/events").get_json()["events"]
            assert ev["suppressed_by"] is None
        # enabled (and failing), the parent silences the child's next failure
        db.execute("UPDATE data_sources SET enabled = true WHERE id = 'db'")
        wait_for(lambda: status_of(db, "db") == "error", what="the parent probed and down")
        child.set("ok")
        wait_for(lambda: status_of(db, "app") == "connected", what="the child back")
        child.set("fail")
        wait_for(lambda: status_of(db, "app") == "error", what="the child down again")
        assert transitions(db, "app")[-1][:4] == ("connected", "error", False, ["db"])
        with api(db_url) as client:
            assert client.get("/api/v1/sources/app").get_json()["unreachable_via"] == ["db"]
    finally:
        d.stop()
        parent.close()
        child.close()
