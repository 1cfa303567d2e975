"""Deployment: `healthd up` runs everything and leaves nothing behind (the files under
deploy/ are checked in tests/unit/test_deploy_files.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from healthd.local import embedded
from tests.fix_procs import listening, procs_mentioning, wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_healthd_up_refuses_a_bad_api_setting_before_starting_anything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALTHD_", "STATUSAPI_"))}
    env["STATUSAPI_POOL_MAX"] = "plenty"
    data_dir = tmp_path / "data"
    port = embedded.free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "healthd", "up", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "STATUSAPI_POOL_MAX: must be" in out and "'plenty'" in out and "Traceback" not in out
    assert not data_dir.exists()  # no PostgreSQL was started


@pytest.mark.slow
def test_healthd_up_runs_everything_and_stops_clean() -> None:
    data = Path(tempfile.mkdtemp(prefix="healthd-up-"))
    os.chmod(data, 0o755)
    port = embedded.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEALTHD_", "STATUSAPI_"))}
    log = open(data / "up.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "healthd",
            "up",
            "--data-dir",
            str(data / "state"),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"

    def sources() -> list[dict[str, object]]:
        try:
            with urllib.request.urlopen(base + "/api/v1/sources", timeout=5) as r:
                return json.loads(r.read())["sources"]
        except OSError:
            return []

    try:
        listed = wait_for(
            lambda: len(sources()) == 4 and sources(), timeout=90, what="the example sources"
        )
        assert {s["id"] for s in listed} == {
            "statusapi",
            "embedded-postgres",
            "closed-port",
            "ai-connection",
        }
        probed = wait_for(
            lambda: (s := sources()) and all(x["last_tested_at"] for x in s) and s,
            timeout=30,
            what="every example probed",
        )
        status = {s["id"]: s["connection_status"] for s in probed}
        local_model_server = listening(11434)
        assert status == {
            "statusapi": "connected",
            "embedded-postgres": "connected",
            "closed-port": "disconnected",
            # connected when a local model server (Ollama) runs here, else disconnected
            "ai-connection": status["ai-connection"] if local_model_server else "disconnected",
        }
        out = (data / "up.log").read_text()
        db_url = next(
            line.split("database:")[1].strip() for line in out.splitlines() if "database:" in line
        )
        t = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert time.monotonic() - t < 30
        leftovers = wait_for(
            lambda: (
                not procs_mentioning(str(data / "state"))
                and not procs_mentioning(db_url)
                and not procs_mentioning(f"127.0.0.1:{port}")
                or None
            ),
            timeout=10,
            what="no process left behind",
        )
        assert leftovers is True
        assert "Traceback" not in (data / "up.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        for pid in procs_mentioning(str(data / "state")):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)
