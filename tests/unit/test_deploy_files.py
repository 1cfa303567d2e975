"""The files under deploy/: the systemd units verify, the example sources are valid."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from healthd.config.sources import read_file, validate_all

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
    assert {s.plugin for s in specs} == {
        "ai-service",
        "http",
        "postgres",
        "command",
        "redis",
        "mysql",
        "grpc",
        "smtp",
        "tls",
    }
    # the AI source is checked every 30 s, as the original checked it
    assert [s.interval_s for s in specs if s.id == "ai-connection"] == [30]
