"""Uptime against a real `healthd run`: a target switched down and up again on a known
schedule; the route's down time is the time between the two transitions in the table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.fix_api import readonly_app
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target

pytestmark = pytest.mark.slow


def _transition(db: psycopg.Connection[Any], to: str) -> tuple[float, int] | None:
    row = db.execute(
        "SELECT date_part('epoch', at), id FROM status_history"
        " WHERE source_id = 'web' AND to_status = %s ORDER BY id DESC LIMIT 1",
        (to,),
    ).fetchone()
    return (float(row[0]), int(row[1])) if row else None


def test_down_time_is_the_time_between_the_transitions(
    db_url: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    target = Target()
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('web', 'Web', 'http', %s)",
        (Jsonb({"url": target.url}),),
    )
    created = db.execute(
        "SELECT date_part('epoch', created_at) FROM data_sources WHERE id = 'web'"
    ).fetchone()[0]  # type: ignore[index]
    daemon = DaemonProcess(
        db_url,
        tmp_path / "daemon.log",
        HEALTHD_INTERVAL="0.3",
        HEALTHD_RISE="1",
        HEALTHD_FALL="1",
    )
    try:
        up1 = wait_for(lambda: _transition(db, "connected"), what="connected")
        target.set("fail")
        down = wait_for(lambda: _transition(db, "error"), what="error")
        wait_for(lambda: target.count("fail") >= 5, what="a few failed probes")
        target.set("ok")
        up2 = wait_for(
            lambda: (t := _transition(db, "connected")) and t[1] > down[1] and t,
            what="connected again",
        )
    finally:
        daemon.stop()
        target.close()
    with readonly_app(db_url) as app:
        body = app.test_client().get("/api/v1/sources/web/uptime").get_json()
    day = body["windows"]["24h"]
    assert day["down_s"] == pytest.approx(up2[0] - down[0], abs=0.1)
    assert day["unknown_s"] == pytest.approx(up1[0] - created, abs=0.1)
    assert day["maintenance_s"] == 0
