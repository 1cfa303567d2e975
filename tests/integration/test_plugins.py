"""Every plugin against real servers on 127.0.0.1, through the same contract:
reaches it, cannot reach it, times out, and never leaks a secret."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd import plugins
from healthd.local import embedded
from healthd.plugins import httpclient, registry
from healthd.plugins.base import ProbeResult
from tests import fix_kinds
from tests.fix_procs import wait_for
from tests.fix_servers import DnsServer, FakeOpenAI, Target, hanging_listener, make_cert

SECRET = "sk-very-secret-4242"
NAGIOS = Path("/usr/lib/nagios/plugins")


async def _probe(name: str, config: dict[str, Any], timeout: float = 2.0) -> ProbeResult:
    plugin = plugins.create(name, config)
    try:
        return await plugins.run_check(plugin, timeout)
    finally:
        await plugin.close()
        await httpclient.close_session()


def probe(name: str, config: dict[str, Any], timeout: float = 2.0) -> ProbeResult:
    return asyncio.run(_probe(name, config, timeout))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    target, fake = Target(), FakeOpenAI(SECRET)
    dns_ok, dns_silent = DnsServer({"db.internal": "10.1.2.3"}), DnsServer({}, silent=True)
    with hanging_listener() as hang_port:
        yield {
            "target": target,
            "ai": fake,
            "dns": dns_ok,
            "dns_silent": dns_silent,
            "hang": hang_port,
            "closed": embedded.free_port(),
        }
    target.close()
    fake.close()
    dns_ok.close()
    dns_silent.close()


def contract_cases(s: dict[str, Any], pg_url: str) -> dict[str, dict[str, Any]]:
    """plugin -> configs that reach it, cannot reach it, and hang."""
    hang = f"http://127.0.0.1:{s['hang']}"
    closed = s["closed"]
    bad_pg = pg_url.replace("postgres@", f"postgres:{SECRET}@").rsplit(":", 1)[0] + f":{closed}/x"
    return {
        "http": {
            "good": {"url": s["target"].url + f"?token={SECRET}", "headers": {"X-Api-Key": SECRET}},
            "unreachable": {"url": f"http://u:{SECRET}@127.0.0.1:{closed}/?key={SECRET}"},
            "hang": {"url": hang + "/"},
        },
        "ai-service": {
            "good": {"endpoint": s["ai"].endpoint, "api_key": SECRET},
            "unreachable": {"endpoint": f"http://127.0.0.1:{closed}/v1", "api_key": SECRET},
            "hang": {"endpoint": hang + "/v1", "api_key": SECRET},
        },
        "postgres": {
            # a role whose password is the secret (see test_contract): it must not leak
            "good": {"dsn": pg_url.replace("postgres@", f"healthd_contract:{SECRET}@")},
            "unreachable": {"dsn": bad_pg},
            "hang": {"dsn": f"postgresql://postgres:{SECRET}@127.0.0.1:{s['hang']}/x"},
        },
        "tcp": {
            "good": {"host": "127.0.0.1", "port": s["target"].port},
            "unreachable": {"host": "127.0.0.1", "port": closed},
            "hang": {"host": "127.0.0.1", "port": s["hang"], "send": "PING\r\n", "expect": "+PONG"},
        },
        "dns": {
            "good": {"name": "db.internal", "server": f"127.0.0.1:{s['dns'].port}"},
            "unreachable": {"name": "db.internal", "server": f"127.0.0.1:{s['dns_silent'].port}"},
            "hang": {"name": "db.internal", "server": f"127.0.0.1:{s['dns_silent'].port}"},
        },
        "command": {
            "good": {
                "argv": [sys.executable, "-c", "print('OK - fine')"],
                "env": {"TOKEN": SECRET},
            },
            "unreachable": {
                "argv": [str(NAGIOS / "check_tcp"), "-H", "127.0.0.1", "-p", str(closed)]
            },
            "hang": {"argv": ["sleep", "30"], "env": {"TOKEN": SECRET}},
        },
    }


@pytest.mark.parametrize("name", registry.names())
def test_contract(
    name: str,
    servers: dict[str, Any],
    pg_cluster: embedded.Cluster,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    caplog.set_level(logging.DEBUG)
    if name == "postgres":
        # the cluster wants a password over TCP: a role of this test's own with the secret
        with psycopg.connect(pg_cluster.url(), autocommit=True) as admin:
            if not admin.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = 'healthd_contract'"
            ).fetchone():
                admin.execute(f"CREATE ROLE healthd_contract LOGIN PASSWORD '{SECRET}'")
    every = contract_cases(servers, pg_cluster.url())
    # the kinds whose servers are costly start them only for their own case
    kind = fix_kinds.contract_cases(name, request, servers["closed"], servers["hang"])
    every |= {name: kind} if kind else {}
    covered = sorted(every)
    assert name in covered, f"plugin {name!r} is registered but has no case in contract_cases"
    cases = every[name]
    good = probe(name, cases["good"])
    assert good.status == "connected", good
    assert good.latency_ms is not None and good.latency_ms >= 0
    bad = probe(name, cases["unreachable"])
    assert bad.status in ("disconnected", "error") and not bad.ok and bad.message, bad
    t = time.monotonic()
    hung = probe(name, cases["hang"], timeout=1.0)
    took = time.monotonic() - t
    assert not hung.ok and took < 3.0, (hung, took)
    everything = " ".join(r.message for r in (good, bad, hung)) + caplog.text
    assert SECRET not in everything


def test_http_details(servers: dict[str, Any]) -> None:
    target: Target = servers["target"]
    target.set("fail")
    try:
        r = probe("http", {"url": target.url})
        assert (r.status, r.message) == ("error", "HTTP 500")
        assert probe("http", {"url": target.url, "expect_status": 500}).ok
    finally:
        target.set("ok")
    assert probe("http", {"url": target.url, "body_contains": '"ok"'}).ok
    r = probe("http", {"url": target.url, "body_contains": "banana"})
    assert r.status == "error" and "does not contain 'banana'" in r.message
    r = probe("http", {"url": f"http://127.0.0.1:{servers['closed']}/"})
    assert r.status == "disconnected" and r.message.startswith("connection refused")
    r = probe("http", {"url": f"http://127.0.0.1:{servers['hang']}/"}, timeout=0.5)
    assert r.status == "disconnected" and "timed out after 0.5 s" in r.message
    r = probe("http", {"url": "http://no-such-host.invalid/"})
    assert r.status == "disconnected" and "DNS" in r.message


def test_no_probe_carries_a_cookie_another_probe_was_given() -> None:
    """Probes share one session per loop: a cookie one answer sets must not ride along on
    the next probe (of this source or another on the host), or a health check would see a
    logged-in page the next time, and a secret could travel between sources."""
    seen: list[str | None] = []
    from http.server import BaseHTTPRequestHandler

    class SetsCookie(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Cookie"))
            self.send_response(200)
            self.send_header("Set-Cookie", "session=abc123; Path=/")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), SetsCookie)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    # a host name, not an IP: a cookie jar (aiohttp's did) keeps cookies only for names
    url = f"http://localhost:{srv.server_address[1]}/"

    async def twice() -> list[ProbeResult]:
        one, two = plugins.create("http", {"url": url}), plugins.create("http", {"url": url})
        try:
            return [await plugins.run_check(p, 2.0) for p in (one, one, two)]
        finally:
            await httpclient.close_session()

    try:
        results = asyncio.run(twice())
    finally:
        srv.shutdown()
        srv.server_close()
    assert [r.status for r in results] == ["connected"] * 3
    assert seen == [None, None, None]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = make_cert(d, days=2)
    target = Target()
    target.close()
    from http.server import BaseHTTPRequestHandler

    class Ok(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{srv.server_address[1]}/", cert
    srv.shutdown()
    srv.server_close()


def test_tls_self_signed_and_expiry(tls_server: tuple[str, Path]) -> None:
    url, cert = tls_server
    r = probe("http", {"url": url})
    assert r.status == "disconnected" and "certificate" in r.message
    assert probe("http", {"url": url, "verify_tls": False}).ok
    assert probe("http", {"url": url, "ca_file": str(cert)}).ok
    r = probe("http", {"url": url, "ca_file": str(cert), "cert_expiry_days": 7})
    assert r.status == "error" and "TLS certificate expires in" in r.message
    assert probe("http", {"url": url, "ca_file": str(cert), "cert_expiry_days": 1}).ok


def test_ai_service(servers: dict[str, Any]) -> None:
    fake: FakeOpenAI = servers["ai"]
    r = probe("ai-service", {"endpoint": fake.endpoint, "api_key": "sk-wrong-key-1234"})
    assert (r.status, r.message) == ("error", "API key rejected (401)")
    r = probe("ai-service", {"endpoint": fake.endpoint, "api_key": SECRET, "model": "gpt-test"})
    assert r.ok and r.message == "2 models"
    r = probe("ai-service", {"endpoint": fake.endpoint, "api_key": SECRET, "model": "gpt-9"})
    assert r.status == "error" and "'gpt-9' is not offered" in r.message
    fake.rate_limited = True
    try:
        r = probe("ai-service", {"endpoint": fake.endpoint, "api_key": SECRET})
        assert r.status == "error" and r.message.startswith(
            "rate limited (429): Rate limit reached"
        )
    finally:
        fake.rate_limited = False


def test_postgres_reconnects_after_terminate(pg_cluster: embedded.Cluster) -> None:
    async def scenario() -> list[ProbeResult]:
        plugin = plugins.create("postgres", {"dsn": pg_cluster.url()})
        out = [await plugins.run_check(plugin, 2)]
        with psycopg.connect(pg_cluster.url(), autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'healthd-probe'"
            ).fetchall()
            assert killed == [(True,)]
        out.append(await plugins.run_check(plugin, 2))
        out.append(await plugins.run_check(plugin, 2))
        await plugin.close()
        return out

    first, after_kill, steady = asyncio.run(scenario())
    assert first.ok and not first.reconnected
    assert after_kill.ok and after_kill.reconnected
    assert steady.ok and not steady.reconnected
    r = probe("postgres", {"dsn": pg_cluster.url("nosuchdb")})
    assert (r.status, r.message) == ("error", "database or role does not exist")
    r = probe("postgres", {"dsn": pg_cluster.url(), "query": "SELECT 1/0"})
    assert r.status == "error" and "division by zero" in r.message


def test_dns(servers: dict[str, Any]) -> None:
    port = servers["dns"].port
    r = probe("dns", {"name": "db.internal", "server": f"127.0.0.1:{port}", "expect": "10.1.2.3"})
    assert r.ok and "10.1.2.3" in r.message
    r = probe("dns", {"name": "nope.internal", "server": f"127.0.0.1:{port}"})
    assert r.status == "error" and "NXDOMAIN" in r.message
    r = probe(
        "dns",
        {"name": "db.internal", "server": f"127.0.0.1:{servers['dns_silent'].port}"},
        timeout=0.5,
    )
    assert r.status == "disconnected" and "timed out" in r.message


@pytest.mark.skipif(
    not (NAGIOS / "check_tcp").exists(), reason="monitoring-plugins-basic not installed"
)
def test_real_nagios_plugins(servers: dict[str, Any]) -> None:
    port = servers["target"].port
    r = probe("command", {"argv": [str(NAGIOS / "check_tcp"), "-H", "127.0.0.1", "-p", str(port)]})
    assert r.ok and r.message.startswith("TCP OK")
    r = probe("command", {"argv": [str(NAGIOS / "check_http"), "-H", "127.0.0.1", "-p", str(port)]})
    assert r.ok and r.message.startswith("HTTP OK")
    r = probe(
        "command",
        {"argv": [str(NAGIOS / "check_tcp"), "-H", "127.0.0.1", "-p", str(servers["closed"])]},
    )
    assert r.status == "error" and "Connection refused" in r.message
    r = probe("command", {"argv": ["sh", "-c", "echo 'DISK WARNING - 91% used'; exit 1"]})
    assert r.ok and r.message == "DISK WARNING - 91% used"  # said once, not twice
    r = probe("command", {"argv": ["sh", "-c", "echo 'UNKNOWN - no idea'; exit 3"]})
    assert r.status == "error" and r.message == "UNKNOWN - no idea"
    r = probe("command", {"argv": ["/nonexistent/check_x"]})
    assert r.status == "error" and "cannot run /nonexistent/check_x" in r.message


def test_command_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    r = probe(
        "command", {"argv": ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"]}, timeout=0.5
    )
    assert r.status == "disconnected" and "process group killed" in r.message
    child = int(pidfile.read_text())

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        # a killed child lingers as a zombie until reaped by init; that counts as gone
        try:
            return Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"
        except FileNotFoundError:
            return True

    wait_for(gone, timeout=5, what="the plugin's child process gone after the timeout")


def test_secret_references(
    monkeypatch: pytest.MonkeyPatch, servers: dict[str, Any], tmp_path: Path
) -> None:
    fake = servers["ai"]
    monkeypatch.setenv("AI_KEY", SECRET)
    assert probe("ai-service", {"endpoint": fake.endpoint, "api_key": {"env": "AI_KEY"}}).ok
    (tmp_path / "ai-key").write_text(SECRET + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert probe("ai-service", {"endpoint": fake.endpoint, "api_key": {"file": "ai-key"}}).ok
    r = probe("ai-service", {"endpoint": fake.endpoint, "api_key": {"env": "NOT_SET_ANYWHERE"}})
    assert (
        r.status == "error"
        and r.message == 'secret reference {"env": "NOT_SET_ANYWHERE"}: the variable is not set'
    )
    r = probe("ai-service", {"endpoint": fake.endpoint, "api_key": {"file": "missing"}})
    assert r.status == "error" and r.message.startswith('secret reference {"file": "missing"}')


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HEALTHD_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "healthd", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_probe_cli(servers: dict[str, Any], healthd_cli: Any, db: psycopg.Connection[Any]) -> None:
    t = time.monotonic()
    r = _cli("probe", "--plugin", "http", "--config", '{"url": "http://127.0.0.1:1/"}')
    assert r.returncode == 2 and "connection refused" in r.stdout and time.monotonic() - t < 5
    r = _cli(
        "probe",
        "--plugin",
        "ai-service",
        "--json",
        "--config",
        json.dumps({"endpoint": servers["ai"].endpoint, "api_key": SECRET}),
    )
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["status"] == "connected" and SECRET not in r.stdout + r.stderr
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('t', 't', 'http', %s)",
        (json.dumps({"url": servers["target"].url}),),
    )
    r = healthd_cli("probe", "t")
    assert r.returncode == 0 and r.stdout.startswith("t: connected")
    assert db.execute("SELECT last_tested_at FROM data_sources WHERE id='t'").fetchone() == (None,)
    r = healthd_cli("probe", "ghost")
    assert r.returncode == 3 and "no source with id 'ghost'" in r.stderr
