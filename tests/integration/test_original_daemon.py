"""What a client of the original system sees, against the real `healthd run`: the two
/api/ai/* routes key for key (connected, key rejected, no AI source), updated_at moving
with every probe's write, and the summary counting a source that came back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from statusapi import create_app
from tests.fix_procs import wait_for
from tests.fix_servers import FakeOpenAI, Target

pytestmark = pytest.mark.slow

KEY = "sk-good-key-123"
MILLIS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def add_http(db: psycopg.Connection[Any], sid: str, url: str) -> None:
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES (%s, %s, 'http', %s)",
        (sid, sid, json.dumps({"url": url})),
    )


def status(db: psycopg.Connection[Any], sid: str) -> str:
    row = db.execute("SELECT connection_status FROM data_sources WHERE id = %s", (sid,)).fetchone()
    return row[0] if row else ""


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(KEY)
    yield fake
    fake.close()


def add_ai(db: psycopg.Connection[Any], endpoint: str, key: str) -> None:
    db.execute(
        "INSERT INTO data_sources (id, name, type, plugin, config)"
        " VALUES ('ai-connection', 'AI', 'ai', 'ai-service', %s)",
        (json.dumps({"endpoint": endpoint, "api_key": key}),),
    )


def millis(db: psycopg.Connection[Any]) -> str:
    at: datetime = db.execute(
        "SELECT last_tested_at FROM data_sources WHERE id = 'ai-connection'"
    ).fetchone()[0]
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def test_ai_routes_exactly_as_the_original(
    db: psycopg.Connection[Any], db_url: str, openai: FakeOpenAI, daemons: Any
) -> None:
    app = create_app({"DATABASE_URL": db_url})
    client = app.test_client()
    try:
        add_ai(db, openai.endpoint, KEY)
        daemons()
        wait_for(lambda: status(db, "ai-connection") == "connected", what="AI connected")

        def agreeing() -> tuple[dict[str, Any], dict[str, Any]] | None:
            # a probe may land between the two reads: take a pair that agrees with the row
            s = client.get("/api/ai/connection-status").get_json()
            c = client.get("/api/ai/connections").get_json()
            same = s["lastTested"] == c["lastTested"] == millis(db)
            return (s, c) if same else None

        s, c = wait_for(agreeing, what="the routes agreeing with the row")
        assert MILLIS_Z.match(s["lastTested"])
        assert s == {
            "status": "configured",
            "lastTested": s["lastTested"],
            "testStatus": "success",
            "endpoint": "configured",
            "connectionStatus": "connected",
            "errorMessage": None,
        }
        assert c == {
            "endpoint": "configured",
            "apiKey": "",
            "enabled": True,
            "lastTested": c["lastTested"],
            "testStatus": "success",
        }
        assert MILLIS_Z.match(c["lastTested"])

        # the key is rejected: the fake answers 401, the debounced status becomes error
        db.execute(
            "UPDATE data_sources SET config = jsonb_set(config, '{api_key}', '\"sk-wrong\"')"
            " WHERE id = 'ai-connection'"
        )
        wait_for(lambda: status(db, "ai-connection") == "error", what="key rejected")
        s = client.get("/api/ai/connection-status").get_json()
        assert MILLIS_Z.match(s["lastTested"])
        assert s == {
            "status": "configured",
            "lastTested": s["lastTested"],
            "testStatus": "failed",
            "endpoint": "configured",
            "connectionStatus": "error",
            "errorMessage": "API key rejected (401)",
        }
        c = client.get("/api/ai/connections").get_json()
        assert set(c) == {"endpoint", "apiKey", "enabled", "lastTested", "testStatus"}
        assert (c["endpoint"], c["apiKey"], c["enabled"], c["testStatus"]) == (
            "configured",
            "",
            True,
            "failed",
        )

        db.execute("DELETE FROM data_sources WHERE id = 'ai-connection'")
        assert client.get("/api/ai/connection-status").get_json() == {
            "status": "not_configured",
            "lastTested": None,
            "testStatus": None,
            "endpoint": "not_configured",
            "connectionStatus": "unknown",
            "errorMessage": None,
        }
        assert client.get("/api/ai/connections").get_json() == {
            "endpoint": "not_configured",
            "apiKey": "",
            "enabled": False,
            "lastTested": None,
            "testStatus": None,
        }
    finally:
        if app.extensions.get("healthd_pool"):
            app.extensions["healthd_pool"].close()


def test_updated_at_moves_with_every_probe_write(
    db: psycopg.Connection[Any], target: Target, daemons: Any
) -> None:
    add_http(db, "web", target.url)
    daemons()
    seen: dict[datetime, tuple[datetime, datetime]] = {}

    def three_writes() -> bool:
        tested, updated, changed = db.execute(
            "SELECT last_tested_at, updated_at, config_changed_at FROM data_sources"
            " WHERE id = 'web'"
        ).fetchone()
        if tested is not None:
            seen[tested] = (updated, changed)
        return len(seen) >= 3

    wait_for(three_writes, timeout=20, interval=0.05, what="three probes written")
    updated = [u for u, _ in seen.values()]
    # as in the original, the status write sets updated_at with the result
    assert len(set(updated)) == len(seen), seen
    assert all(u >= t for t, (u, _) in seen.items()), seen
    # an operator's change of what is probed has a column of its own, untouched by probes
    assert len({c for _, c in seen.values()}) == 1
    before = next(iter(seen.values()))[1]
    db.execute(
        "UPDATE data_sources SET config = %s WHERE id = 'web'",
        (json.dumps({"url": target.url + "moved"}),),
    )
    changed_at = db.execute(
        "SELECT config_changed_at FROM data_sources WHERE id = 'web'"
    ).fetchone()[0]
    assert changed_at > before
    wait_for(
        lambda: any(r["path"] == "/moved" for r in list(target.requests)),
        timeout=5,
        what="the changed config probed (the resync compares config_changed_at)",
    )


def test_summary_counts_a_source_that_came_back(
    db: psycopg.Connection[Any], openai: FakeOpenAI, daemons: Any, tmp_path: Path
) -> None:
    add_ai(db, openai.endpoint, KEY)
    d = daemons()
    wait_for(lambda: status(db, "ai-connection") == "connected", what="AI connected")

    def failed() -> bool:
        row = db.execute(
            "SELECT test_status FROM data_sources WHERE id = 'ai-connection'"
        ).fetchone()
        return bool(row and row[0] == "failed")

    openai.rate_limited = True  # one failed test...
    wait_for(failed, what="a failed probe written")
    openai.rate_limited = False  # ...and a good one after it: it came back
    wait_for(
        lambda: re.search(r"Health check: \d+ healthy, \d+ failed, 1 reconnected", d.log()),
        timeout=10,
        what="a summary counting the source that came back",
    )
    assert "source ai-connection: reconnected" in d.log()
    # the debounced status never moved: one failure is not three
    assert status(db, "ai-connection") == "connected"
    assert d.stop() == 0 and "Traceback" not in d.log()
