"""The files under deploy/: the systemd units verify, the example sources are valid."""

from __future__ import annotations

import re
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


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian package prometheus; .ci/run installs it) is missing")
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=60, cwd=DEPLOY / "prometheus"
    )


def test_alert_rules_check_and_pass_their_unit_test() -> None:
    check = _promtool("check", "rules", "alerts.yml")
    assert check.returncode == 0 and "SUCCESS: 5 rules found" in check.stdout, check
    # alerts_test.yml: each alert fires when it should, not before, with its annotations
    unit = _promtool("test", "rules", "alerts_test.yml")
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr
    tested = set(
        re.findall(r"alertname: (\w+)", (DEPLOY / "prometheus/alerts_test.yml").read_text())
    )
    rules = set(re.findall(r"- alert: (\w+)", (DEPLOY / "prometheus/alerts.yml").read_text()))
    assert (
        rules
        == tested
        == {
            "HealthdSourceDown",
            "HealthdDaemonHeartbeatStale",
            "HealthdWebhookDeliveriesGivenUp",
            "HealthdScheduleLag",
            "HealthdSourceSeriesTruncated",
        }
    )


def _unit(name: str) -> dict[str, list[str]]:
    """A unit file's [Service] settings, each name with every value it is given."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in (DEPLOY / name).read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


@pytest.mark.parametrize("name", ["healthd.service", "statusapi.service"])
def test_units_keep_the_exposure_items_checked_against_what_they_run(name: str) -> None:
    unit = _unit(name)
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["WatchdogSec"] == ["30s"]  # statusapi: the master's loop pings it
    assert unit["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    assert unit["SystemCallErrorNumber"] == ["EPERM"]  # a refused call fails, not kills
    assert unit["PrivateUsers"] == ["yes"] and unit["ProcSubset"] == ["pid"]
    # the password by credential: commented, as the file is the operator's to make
    text = (DEPLOY / name).read_text()
    assert "#LoadCredential=pgpass:" in text and "#Environment=PGPASSFILE=%d/pgpass" in text


def _exposure(name: str) -> float:
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(DEPLOY / name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", proc.stdout + proc.stderr)
    if found is None:
        pytest.skip(f"this systemd-analyze has no offline security check: {proc.stderr[:200]}")
    return float(found.group(1))


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
@pytest.mark.parametrize("name", ["healthd.service", "statusapi.service"])
def test_exposure_stays_low(name: str) -> None:
    # 1.7 and 1.6 before PrivateUsers, ProcSubset, the narrower syscall filter (systemd 252)
    assert _exposure(name) <= 1.1
