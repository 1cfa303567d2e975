"""/metrics: the daemons' own series labelled by node, bounded label values, and the
API's request counters summed over gunicorn's workers."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

import healthd
from healthd.core.selfmetrics import SelfMetrics
from tests.fix_api import readonly_app
from tests.fix_db import add_source
from tests.fix_procs import DaemonProcess, Gunicorn, wait_for
from tests.fix_servers import Target


def promtool(text: bytes) -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian package prometheus; .ci/run installs it) is missing")
    proc = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the one series of ``name`` whose labels include ``labels``."""
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    return None


@pytest.fixture
def client(db_url: str) -> Iterator[FlaskClient]:
    with readonly_app(db_url) as app:
        yield app.test_client()


def put_node(db: psycopg.Connection[Any], node: str, metrics: dict[str, Any], age_s: float) -> None:
    db.execute(
        "INSERT INTO daemon_nodes (node_id, hostname, pid, heartbeat_at, metrics)"
        " VALUES (%s, 'h', 1, now() - make_interval(secs => %s), %s)",
        (node, age_s, json.dumps(metrics)),
    )


def test_daemon_series_per_node_bounded_and_promtool_clean(
    db: psycopg.Connection[Any], client: FlaskClient
) -> None:
    m = SelfMetrics()
    m.probe("http", "connected", 0.004)
    m.probe("http", "error", 2.0)
    m.probe("no-such-plugin", "connected", 0.1)  # only a registered name becomes a label
    m.lag.observe(0.02)
    m.write_batch.observe(0.03)
    m.db_outages = 2
    m.delivery("given_up")
    put_node(db, "host-a:10:aaaaaa", m.snapshot(in_flight=3, sources=7), 1)
    put_node(db, "host-b:11:bbbbbb", SelfMetrics().snapshot(in_flight=0, sources=0), 1)
    put_node(db, "gone:12:cccccc", m.snapshot(in_flight=1, sources=1), 3600)  # stale: left out
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('odd', 'odd', %s, '{}')",
        ("x" * 50,),
    )
    raw = client.get("/metrics").get_data()
    text = raw.decode()
    a = {"node": "host-a:10:aaaaaa"}
    assert sample(text, "healthd_daemon_probes_total", **a, plugin="http", result="connected") == 1
    assert sample(text, "healthd_daemon_probes_total", **a, plugin="http", result="error") == 1
    assert sample(text, "healthd_daemon_probes_total", **a, plugin="other") == 1
    assert sample(text, "healthd_daemon_probe_duration_seconds_count", **a, plugin="http") == 2
    assert sample(text, "healthd_daemon_probe_duration_seconds_bucket", **a, le="0.005") == 1
    assert sample(text, "healthd_daemon_schedule_lag_seconds_count", **a) == 1
    assert sample(text, "healthd_daemon_write_batch_duration_seconds_sum", **a) == 0.03
    assert sample(text, "healthd_daemon_probes_in_flight", **a) == 3
    assert sample(text, "healthd_daemon_database_outages_total", **a) == 2
    assert sample(text, "healthd_daemon_webhook_deliveries_total", **a, outcome="given_up") == 1
    assert sample(text, "healthd_daemon_schedule_lag_seconds_count", node="host-b:11:bbbbbb") == 0
    assert sample(text, "healthd_webhook_deliveries_pending") == 0
    assert "gone:12" not in text and "no-such-plugin" not in text and "x" * 50 not in text
    assert sample(text, "healthd_sources", plugin="other", status="unknown") == 1
    promtool(raw)


def test_unknown_http_method_is_not_a_label_value(client: FlaskClient) -> None:
    """Issue 10 item 12: a client choosing the method must not create series at will."""
    for method in ("FOOBAR", "BREW", "PROPFIND"):
        client.open("/api/v1/sources", method=method)
    text = client.get("/metrics").get_data(as_text=True)
    assert "FOOBAR" not in text and "BREW" not in text and "PROPFIND" not in text
    assert (sample(text, "statusapi_requests_total", method="other") or 0) >= 3
    methods = set(re.findall(r'statusapi_requests_total\{[^}]*method="([^"]*)"', text))
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


@pytest.mark.slow
def test_request_counters_are_summed_over_gunicorn_workers(db_url: str, tmp_path: Path) -> None:
    g = Gunicorn(db_url, tmp_path / "gunicorn.log", workers=3)
    try:
        seen = []
        for i in range(12):
            # a fresh connection each time, so the requests spread over the workers
            conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10)
            conn.request("GET", "/healthz")
            assert conn.getresponse().read()
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10)
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
            conn.close()
            seen.append(
                sample(text, "statusapi_requests_total", route="/healthz", method="GET") or 0
            )
            assert seen[-1] == i + 1, seen  # every worker's count, never one worker's
    finally:
        assert g.stop() == 0
    assert "Traceback" not in g.log_path.read_text()


@pytest.mark.slow
def test_running_daemon_publishes_its_metrics(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, client: FlaskClient
) -> None:
    target = Target()
    try:
        db.execute(
            "INSERT INTO data_sources (id, name, plugin, config) VALUES ('w', 'w', 'http', %s)",
            (json.dumps({"url": target.url}),),
        )
        d = DaemonProcess(db_url, tmp_path / "daemon.log")
        try:

            def probes() -> float:
                text = client.get("/metrics").get_data(as_text=True)
                return (
                    sample(text, "healthd_daemon_probes_total", plugin="http", result="connected")
                    or 0
                )

            wait_for(lambda: probes() >= 2, timeout=30, what="the daemon's probe counter")
            raw = client.get("/metrics").get_data()
            node = db.execute("SELECT node_id FROM daemon_nodes").fetchone()[0]
            assert f'node="{node}"' in raw.decode()
            promtool(raw)
        finally:
            assert d.stop() == 0
    finally:
        target.close()


def families(raw: bytes) -> dict[str, Any]:
    """The page parsed by prometheus_client's own parser (label values unescaped)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(raw.decode())}


def samples(fams: dict[str, Any], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    fam = fams.get(name)
    return {tuple(sorted(s.labels.items())): s.value for s in fam.samples} if fam else {}


ODD_ID = 'we"ird\\id\nx'  # a quote, a backslash and a newline: escaped on the page


def test_per_source_series_name_what_is_down_and_promtool_is_clean(
    db: psycopg.Connection[Any], client: FlaskClient
) -> None:
    add_source(db, "web", type="service", connection_status="connected", latency_ms=12.5)
    db.execute("UPDATE data_sources SET last_tested_at = now() - interval '5 s' WHERE id = 'web'")
    add_source(
        db,
        "db",
        "postgres",
        type="database",
        connection_status="connected",
        pending_status="disconnected",
        pending_count=2,
        fall=4,
        flapping=True,
    )
    add_source(db, ODD_ID, "tcp", type='a "type"', connection_status="error")
    add_source(db, "off", "tcp", enabled=False, connection_status="disconnected")
    raw = client.get("/metrics").get_data()
    promtool(raw)
    fams = families(raw)
    assert samples(fams, "healthd_source_up") == {
        (("plugin", "http"), ("source_id", "web"), ("type", "service")): 1.0,
        (("plugin", "postgres"), ("source_id", "db"), ("type", "database")): 1.0,
        (("plugin", "tcp"), ("source_id", ODD_ID), ("type", 'a "type"')): 0.0,
    }  # a disabled source is not probed: no series of its own
    status = samples(fams, "healthd_source_status")
    assert status[(("source_id", ODD_ID), ("status", "error"))] == 1
    assert [status[(("source_id", ODD_ID), ("status", w))] for w in ("connected", "unknown")] == [
        0,
        0,
    ]
    assert len(status) == 3 * 4  # every status word for each source: none vanishes on a change
    age = samples(fams, "healthd_source_last_probe_age_seconds")
    assert 5 <= age[(("source_id", "web"),)] < 60 and (("source_id", "db"),) not in age
    assert samples(fams, "healthd_source_latency_seconds") == {(("source_id", "web"),): 0.0125}
    assert samples(fams, "healthd_source_flapping")[(("source_id", "db"),)] == 1
    assert samples(fams, "healthd_source_pending_results")[(("source_id", "db"),)] == 2
    assert samples(fams, "healthd_source_pending_needed_results")[(("source_id", "db"),)] == 4
    assert samples(fams, "healthd_source_series_truncated") == {(): 0.0}
    assert samples(fams, "healthd_build_info") == {(("version", healthd.__version__),): 1.0}
    # the escaping itself, as the text format spells it
    assert 'source_id="we\\"ird\\\\id\\nx"' in raw.decode()


def test_counts_read_zero_instead_of_vanishing(
    db: psycopg.Connection[Any], client: FlaskClient
) -> None:
    add_source(db, "web", connection_status="error", flapping=True)
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "healthd_sources", status="error", plugin="http", enabled="true") == 1
    assert sample(text, "healthd_sources_flapping", plugin="http") == 1
    db.execute("UPDATE data_sources SET connection_status = 'connected', flapping = false")
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "healthd_sources", status="error", plugin="http", enabled="true") == 0
    assert sample(text, "healthd_sources", status="connected", plugin="http", enabled="true") == 1
    assert sample(text, "healthd_sources_flapping", plugin="http") == 0
    # and with no source at all, every registered plugin still has its zero
    db.execute("DELETE FROM data_sources")
    text = client.get("/metrics").get_data(as_text=True)
    for plugin in ("http", "tcp", "postgres", "other"):
        assert sample(text, "healthd_sources", status="unknown", plugin=plugin) == 0


def test_the_cap_bounds_per_source_series_and_says_so(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    for sid in ("a", "b", "c"):
        add_source(db, sid, connection_status="connected")
    with readonly_app(db_url, METRICS_MAX_SOURCES=2) as app:
        raw = app.test_client().get("/metrics").get_data()
    promtool(raw)
    fams = families(raw)
    assert {dict(k)["source_id"] for k in samples(fams, "healthd_source_up")} == {"a", "b"}
    assert samples(fams, "healthd_source_series_truncated") == {(): 1.0}
    assert samples(fams, "healthd_source_series_max_sources") == {(): 2.0}
    # the per-plugin counts still count every source
    text = raw.decode()
    assert sample(text, "healthd_sources", status="connected", plugin="http", enabled="true") == 3


def test_every_series_the_shipped_alert_rules_read_is_on_the_page(
    db: psycopg.Connection[Any], client: FlaskClient
) -> None:
    m = SelfMetrics()
    m.lag.observe(0.2)
    m.delivery("given_up")
    put_node(db, "host-a:10:aaaaaa", m.snapshot(in_flight=0, sources=1), 1)
    add_source(db, "web", connection_status="error")
    text = client.get("/metrics").get_data(as_text=True)
    on_page = set(re.findall(r"^([a-zA-Z_:][\w:]*)[{ ]", text, re.M))
    rules = (Path(__file__).resolve().parents[2] / "deploy/prometheus/alerts.yml").read_text()
    read = set(re.findall(r"\b(healthd_[a-z_]+)", rules))
    assert read and read <= on_page, read - on_page
