"""`healthd up` as a new user runs it: root, a fresh clone in a private (0700) directory,
no flags at all. The cluster goes where the postgres user can reach it, the examples (the
AI one included) are probed, Ctrl-C leaves no process behind, and a second run reuses
the data."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.fix_procs import default_port_taken, listening, procs_mentioning, wait_for

REPO = Path(__file__).resolve().parents[2]
BASE = "http://127.0.0.1:8080"
MILLIS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
START_LINE = (
    "Health check service started (30s interval, silent mode, DB sync enabled, debounce active)"
)


def _get(path: str) -> Any:
    try:
        with urllib.request.urlopen(BASE + path, timeout=5) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def _probed() -> list[dict[str, Any]] | None:
    body = _get("/api/v1/sources")
    sources = body["sources"] if body else []
    if len(sources) == 4 and all(s["last_tested_at"] for s in sources):
        return list(sources)
    return None


class Up:
    """One `healthd up` with no flags, started the way a person would from the clone."""

    def __init__(self, clone: Path, log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALTHD_", "STATUSAPI_"))}
        # the clone's code, not this checkout's editable install (installing it into the
        # test's virtualenv would repoint that at the clone for every later test)
        env["PYTHONPATH"] = str(clone)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "healthd", "up"],
            cwd=clone,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ctrl_c(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(45)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.close_log()

    def close_log(self) -> None:
        if not self._log.closed:
            self._log.close()


@pytest.mark.slow
@pytest.mark.timeout(300)  # may first wait for the other test that needs port 8080
@pytest.mark.skipif(os.geteuid() != 0, reason="runs `healthd up` as root (CI runs as root)")
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to clone the repository")
def test_up_as_root_from_a_private_clone_with_no_flags() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("the tests do not run from a git checkout")
    with default_port_taken():
        _up_as_root_from_a_private_clone()


def _up_as_root_from_a_private_clone() -> None:
    if listening(8080):
        pytest.skip("127.0.0.1:8080 is taken; `healthd up` with no flags needs it")
    private = Path(tempfile.mkdtemp(prefix="healthd-root-home-"))  # mode 0700, like /root
    assert private.stat().st_mode & 0o777 == 0o700
    clone = private / "healthd"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    data_dir: Path | None = None
    ups: list[Up] = []
    try:
        first = Up(clone, private / "up1.log")
        ups.append(first)
        probed = wait_for(_probed, timeout=120, what="the four examples probed")
        out = first.output()
        data_dir = Path(re.findall(r"^  data: +(\S+)", out, re.M)[0])
        assert data_dir.is_relative_to("/var/lib/healthd/embedded"), out
        assert f"creating the embedded PostgreSQL in {data_dir}" in out
        status = {s["id"]: s["connection_status"] for s in probed}
        ai_expected = "disconnected" if not listening(11434) else status["ai-connection"]
        assert status == {
            "statusapi": "connected",
            "embedded-postgres": "connected",
            "closed-port": "disconnected",
            "ai-connection": ai_expected,
        }
        ai = _get("/api/ai/connection-status")
        assert ai["status"] == ai["endpoint"] == "configured"
        assert MILLIS_Z.match(ai["lastTested"]) and ai["connectionStatus"] == ai_expected
        assert START_LINE + "\n" in out
        events_before = [e["id"] for e in _get("/api/v1/events?after=0")["events"]]
        assert events_before
        assert first.ctrl_c() == 0
        _no_process_left(clone, data_dir)
        assert "Traceback" not in first.output()

        second = Up(clone, private / "up2.log")
        ups.append(second)
        wait_for(_probed, timeout=120, what="the examples probed again")
        out = second.output()
        assert f"reusing the embedded PostgreSQL in {data_dir}" in out
        events_after = [e["id"] for e in _get("/api/v1/events?after=0")["events"]]
        assert events_after[: len(events_before)] == events_before
        assert second.ctrl_c() == 0
        _no_process_left(clone, data_dir)
        assert "Traceback" not in second.output()
    finally:
        for up in ups:
            if up.proc.poll() is None:
                up.proc.kill()
                up.proc.wait()
            up.close_log()
        if data_dir is not None:
            for pid in procs_mentioning(str(data_dir)):
                os.kill(pid, signal.SIGKILL)
            shutil.rmtree(data_dir, ignore_errors=True)  # this test made it
        shutil.rmtree(private, ignore_errors=True)


def _no_process_left(clone: Path, data_dir: Path) -> None:
    wait_for(
        lambda: (
            not procs_mentioning(str(data_dir))
            and not procs_mentioning(str(clone))
            and not listening(8080)
        ),
        timeout=15,
        what="no process left behind",
    )
