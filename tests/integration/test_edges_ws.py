"""The streams' edges (issue 23) against real processes: a probed target's words carried
exactly by the WebSocket and the SSE stream, a client that floods the WebSocket, clients
that close normally, and an empty STATUSAPI_TOKENS, all under a real gunicorn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fix_procs import Gunicorn, wait_for

pytestmark = pytest.mark.slow

# Unicode line breaks that str.splitlines() (and other "any line break" readers) split on,
# which JSON allows raw inside a string and orjson leaves raw
BREAKS = "\u2028\u2029\u0085"


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Gunicorn]:
    g = Gunicorn(db_url, tmp_path / "gunicorn.log", workers=1, STATUSAPI_THREADS="8")
    yield g
    g.stop()


def receive(ws: Any, n: int, timeout: float = 10) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        raw = ws.receive(timeout=timeout)
        assert raw is not None, f"no frame within {timeout} s (got {len(out)} of {n})"
        out.append(json.loads(raw))
    return out


def get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


# -- 13: STATUSAPI_TOKENS set but holding no token ------------------------------------------


@pytest.mark.parametrize("raw", [" ", ",", " , ,", ""])
def test_empty_tokens_stop_gunicorn_in_one_line(db_url: str, raw: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "STATUSAPI_DATABASE_URL": db_url,
        "STATUSAPI_WORKERS": "1",
        "STATUSAPI_TOKENS": raw,
    }
    log = tmp_path / "g.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(Gunicorn.CONF), "-b", "127.0.0.1:0"]
            + ["statusapi:create_app()"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # it stops, or it serves (a worker booted: it took the empty list for "no auth")
        wait_for(
            lambda: proc.poll() is not None or "Booting worker" in log.read_text(),
            what="gunicorn to stop or serve",
        )
        text = log.read_text()
        assert proc.poll() is not None, "gunicorn serves with no token required: " + text
        assert proc.returncode != 0, text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("STATUSAPI_TOKENS: "), text
