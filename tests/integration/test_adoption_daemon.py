"""The original backend's table, adopted and probed as it is, end to end: the seed's DDL and
rows (JSON, TIMESTAMP, apiKey, a disabled row, a plugin healthd does not know), `healthd
migrate` twice, the backend's own statements before and while a real `healthd run`
probes a fake OpenAI server, the original /api/ai routes answering from the adopted
row, and the key in no output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd import plugins
from healthd.local import embedded
from statusapi import create_app
from tests.fix_db import status, transitions
from tests.fix_original import (
    BACKEND_INSERT,
    BACKEND_SELECT,
    BACKEND_UPDATE_CONFIG,
    migrate_cli,
    original_database,
    original_rows,
)
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import FakeOpenAI, Target

pytestmark = pytest.mark.slow

KEY = "sk-original-good-111"
ROTATED = "sk-rotated-222"
TESTED = "2025-10-20 10:30:45.123"
ORIGINAL_KEYS = {
    "status",
    "lastTested",
    "testStatus",
    "endpoint",
    "connectionStatus",
    "errorMessage",
}
# what a person or a script reads: every one must be free of both keys
API_ROUTES = (
    "/api/ai/connections",
    "/api/ai/connection-status",
    "/api/v1/sources",
    "/api/v1/sources/ai-connection",
    "/api/v1/sources/ai-connection/events",
    "/api/v1/events?after=0",
    "/status",
    "/status/ai-connection",
)


def message(db: psycopg.Connection[Any], sid: str) -> str:
    row = db.execute("SELECT test_error_message FROM data_sources WHERE id = %s", (sid,)).fetchone()
    return (row[0] or "") if row else ""


def cli(url: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "healthd", "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.stdout + proc.stderr


def test_the_backends_table_adopted_and_probed_as_it_is(
    pg_cluster: embedded.Cluster, tmp_path: Path, target: Target
) -> None:
    openai, legacy = FakeOpenAI(KEY), Target()  # legacy: the disabled row's server
    ai_config = {"endpoint": openai.endpoint, "apiKey": KEY}
    rows = [
        (
            "ai-connection",
            "AI Service",
            "ai",
            "ai-service",
            ai_config,
            True,
            None,
            None,
            None,
            None,
            "2025-10-01 09:00:00",
            "2025-10-01 09:00:00",
        ),
        (
            "legacy-api",
            "Legacy API",
            "http",
            "http",
            {"url": legacy.url},
            False,
            "connected",
            TESTED,
            "success",
            None,
            "2025-10-02 09:00:00",
            TESTED,
        ),
        (
            "crm",
            "CRM",
            None,
            "salesforce",
            {"instanceUrl": "https://acme.example"},
            True,
            "ENABLED",
            None,
            None,
            None,
            "2025-10-03 09:00:00",
            None,
        ),
    ]
    url = original_database(pg_cluster, rows)
    outputs = [migrate_cli(url, env={"PGTZ": "UTC"}) for _ in range(2)]
    assert [p.returncode for p in outputs] == [0, 0], [p.stderr for p in outputs]
    assert outputs[0].stdout.startswith("adopted the original data_sources table: 3 row(s)")
    assert outputs[1].stdout == "applied 0 migration(s)\n"
    before = original_rows(url)
    texts = [p.stdout + p.stderr for p in outputs]
    app = create_app({"DATABASE_URL": url})
    client = app.test_client()
    d = DaemonProcess(url, tmp_path / "daemon.log")
    try:
        with psycopg.connect(url, autocommit=True) as db:
            wait_for(
                lambda: status(db, "ai-connection") == "connected" and status(db, "crm") == "error",
                what="the AI row connected with its apiKey, the unknown plugin's row error",
            )
            # only that row fails, naming its plugin and the ones healthd knows
            crm = message(db, "crm")
            known = ", ".join(sorted(plugins.names()))
            assert f"unknown plugin 'salesforce' (known: {known})" in crm
            # the backend's own read sees the daemon's debounced status and raw result
            status_, tested, test_status, said = db.execute(
                BACKEND_SELECT, ("ai-connection",)
            ).fetchone()
            # (a success's message is kept too: statusapi/api/ai.py shows it only on failure)
            assert (status_, test_status, said) == ("connected", "success", "2 models")
            assert tested is not None
            s = client.get("/api/ai/connection-status").get_json()
            assert set(s) == ORIGINAL_KEYS and s["lastTested"].endswith("Z")
            assert (s["status"], s["endpoint"], s["connectionStatus"], s["testStatus"]) == (
                "configured",
                "configured",
                "connected",
                "success",
            )

            # a row the backend inserts later, its own columns only, is probed
            db.execute(
                BACKEND_INSERT,
                ("docs-site", "Docs", "http", "http", json.dumps({"url": target.url}), True),
            )
            wait_for(lambda: status(db, "docs-site") == "connected", what="the later row probed")

            # the provider revokes the key: error "API key rejected"
            openai.key = ROTATED
            wait_for(lambda: status(db, "ai-connection") == "error", what="the key rejected")
            assert message(db, "ai-connection") == "API key rejected (401)"
            s = client.get("/api/ai/connection-status").get_json()
            assert set(s) == ORIGINAL_KEYS
            assert (s["connectionStatus"], s["testStatus"], s["errorMessage"]) == (
                "error",
                "failed",
                "API key rejected (401)",
            )

            # the backend's edit of the config (the new key, as it spells it) is followed
            db.execute(
                BACKEND_UPDATE_CONFIG,
                (json.dumps({**ai_config, "apiKey": ROTATED}), "ai-connection"),
            )
            wait_for(lambda: status(db, "ai-connection") == "connected", what="the edit followed")
            assert [t for t in transitions(db, "ai-connection")] == [
                ("unknown", "connected"),
                ("connected", "error"),
                ("error", "connected"),
            ]
            c = client.get("/api/ai/connections").get_json()
            assert c == {**c, "endpoint": "configured", "apiKey": "", "enabled": True}

            # the disabled row: never probed, left as the backend wrote it
            assert legacy.requests == []
            after = original_rows(url)
            assert after["legacy-api"] == before["legacy-api"]
            # every row and its definition kept (config as written: apiKey, not api_key)
            assert sorted(after) == ["ai-connection", "crm", "docs-site", "legacy-api"]
            for sid in before:
                for col in ("name", "type", "plugin", "enabled", "created_at"):
                    assert after[sid][col] == before[sid][col], (sid, col)
            assert after["ai-connection"]["config"] == {**ai_config, "apiKey": ROTATED}

            texts += [
                cli(url, "migrate", "--status"),
                cli(url, "sources", "show", "ai-connection", "--json"),
                cli(url, "sources", "list", "--json"),
                cli(url, "status", "--json"),
            ]
            shown = json.loads(cli(url, "sources", "show", "ai-connection", "--json"))
            assert shown["config"]["apiKey"] == ""
            texts += [client.get(route).get_data(as_text=True) for route in API_ROUTES]
            history = db.execute("SELECT error_message, results::text FROM status_history")
            texts += [str(r) for r in history.fetchall()]
    finally:
        if app.extensions.get("healthd_pool"):
            app.extensions["healthd_pool"].close()
        rc = d.stop()
        openai.close()
        legacy.close()
    log = d.log()
    assert rc == 0 and "Traceback" not in log and " failed: " not in log, log
    for text in [log, *texts]:
        assert KEY not in text and ROTATED not in text, text
