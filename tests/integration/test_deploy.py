"""Deployment: the systemd units verify, the example files are valid, `healthd up` runs
everything and leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from healthd import embedded
from healthd.sources import read_file, validate_all
from tests.conftest import wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_units_verify() -> None:
    units = [str(DEPLOY / n) for n in ("healthd.service", "statusapi.service", "statusapi.socket")]
    proc = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60
    )
    complaints = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if line.strip()
        and "/opt/healthd/bin/" not in line
        and "Failed to prepare filename" not in line
    ]
    assert complaints == [], complaints


def test_example_sources_are_valid() -> None:
    specs = validate_all(read_file(DEPLOY / "examples" / "sources.toml"))
    assert {s.plugin for s in specs} == {"ai-service", "http", "postgres", "command"}
    # the AI source is checked every 30 s, as the original checked it
    assert [s.interval_s for s in specs if s.id == "ai-connection"] == [30]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _procs_mentioning(needle: str) -> list[int]:
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            blob = (p / "cmdline").read_bytes() + b"\0" + (p / "environ").read_bytes()
        except OSError:
            continue
        if needle.encode() in blob:
            found.append(int(p.name))
    return found


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
        local_model_server = _listening(11434)
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
                not _procs_mentioning(str(data / "state"))
                and not _procs_mentioning(db_url)
                and not _procs_mentioning(f"127.0.0.1:{port}")
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
        for pid in _procs_mentioning(str(data / "state")):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)
