"""statusapi says it once when the database goes and once when it is back, per worker,
instead of a warning per connection attempt (psycopg_pool's own included)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from healthd.local import embedded
from tests.fix_procs import Gunicorn, wait_for

pytestmark = pytest.mark.slow


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_one_line_each_way_per_worker(private_cluster: embedded.Cluster, tmp_path: Path) -> None:
    cluster = private_cluster
    g = Gunicorn(cluster.url(), tmp_path / "gunicorn.log", workers=1)
    try:
        assert _status(g.base + "/api/v1/sources") == 200
        cluster.stop()
        # several seconds of requests (and the pool's own reconnection attempts) while it is away
        end = time.monotonic() + 4
        answers = set()
        while time.monotonic() < end:
            answers.add(_status(g.base + "/api/v1/sources"))
            time.sleep(0.1)
        assert answers == {503}
        cluster.start()
        wait_for(lambda: _status(g.base + "/api/v1/sources") == 200, timeout=20, what="recovery")
        assert _status(g.base + "/api/v1/summary") == 200
    finally:
        assert g.stop() == 0
    log = g.log_path.read_text()
    down = [line for line in log.splitlines() if "database unreachable" in line]
    back = [line for line in log.splitlines() if "database reachable again" in line]
    assert len(down) == 1 and len(back) == 1, log
    assert "statusapi worker" in down[0] and "answering 503 until it is back" in down[0]
    # psycopg_pool's per-attempt warnings are not in the log
    assert "error connecting in" not in log and "Traceback" not in log, log
