"""Issue 10, the edge items, against real PostgreSQL, real local HTTP servers, the real
`healthd` command and daemon, and statusapi under a real gunicorn."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import threading
import time
import tracemalloc
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd import plugins
from healthd.core.debounce import Event, Observation
from healthd.local import embedded
from healthd.notify.sender import Sender
from healthd.plugins import httpclient as _http
from healthd.plugins.base import ProbeResult
from healthd.store.facade import Store
from statusapi import create_app
from tests.fix_procs import DaemonProcess, Gunicorn, wait_for
from tests.fix_servers import Scripted, Target

pytestmark = pytest.mark.slow
NAGIOS = Path("/usr/lib/nagios/plugins")


async def _probe(name: str, config: dict[str, Any], timeout: float = 3.0) -> ProbeResult:
    plugin = plugins.create(name, config)
    try:
        return await plugins.run_check(plugin, timeout)
    finally:
        await plugin.close()
        await _http.close_session()


def probe(name: str, config: dict[str, Any], timeout: float = 3.0) -> ProbeResult:
    return asyncio.run(_probe(name, config, timeout))


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    return lines[0]


# -- 5: numbers from every door ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (("--interval", "-5", "run"), {}, "--interval: must be a positive number"),
        (("--interval", "0", "run"), {}, "--interval: must be a positive number"),
        (("--interval", "nan", "run"), {}, "--interval: must be a positive number"),
        (("--timeout", "inf", "run"), {}, "--timeout: must be a positive number"),
        (("run",), {"HEALTHD_INTERVAL": "nan"}, "HEALTHD_INTERVAL: must be a positive number"),
        (
            ("probe", "--plugin", "tcp", "--config", '{"host":"h","port":1}', "--timeout", "nan"),
            {},
            "--timeout: must be a positive number",
        ),
    ],
)
def test_cli_refuses_bad_numbers_at_once(
    healthd_cli: Any, args: tuple[str, ...], env: dict[str, str], needle: str
) -> None:
    started = time.monotonic()
    r = healthd_cli(*args, env=env, timeout=30)
    assert r.returncode in (1, 3), r
    assert needle in one_line(r)
    assert time.monotonic() - started < 20  # no spinning, no hang: refused before starting


def test_import_refuses_nan_interval_naming_entry_and_field(
    healthd_cli: Any, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    f = tmp_path / "s.json"
    f.write_text(
        '{"sources": [{"id": "ok", "plugin": "tcp", "config": {"host": "h", "port": 1}},'
        ' {"id": "b", "plugin": "tcp", "config": {"host": "h", "port": 1}, "interval_s": NaN}]}'
    )
    r = healthd_cli("sources", "import", str(f))
    assert r.returncode == 1
    assert one_line(r).startswith("healthd: entry 2 (id 'b'): interval_s: must be")
    f.write_text(
        '[[sources]]\nid = "t"\nplugin = "tcp"\ninterval_s = inf\nconfig = {host = "h", port = 1}\n'
    )
    f2 = tmp_path / "s.toml"
    f.rename(f2)
    r = healthd_cli("sources", "import", str(f2))
    assert r.returncode == 1 and "entry 1 (id 't'): interval_s: must be" in one_line(r)
    assert db.execute("SELECT count(*) FROM data_sources").fetchone() == (0,)


def test_a_nan_row_written_by_sql_fails_only_itself(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    target = Target()
    try:
        for sid, interval in (("good", 0.2), ("nan", "NaN")):
            db.execute(
                "INSERT INTO data_sources (id, name, plugin, config, interval_s)"
                " VALUES (%s, %s, 'http', %s, %s)",
                (sid, sid, json.dumps({"url": target.url}), interval),
            )
        d = DaemonProcess(db_url, tmp_path / "d.log")
        try:
            wait_for(
                lambda: db.execute(
                    "SELECT test_error_message FROM data_sources WHERE id='nan'"
                ).fetchone()[0],
                what="the NaN row reported",
            )
            msg = db.execute(
                "SELECT test_error_message FROM data_sources WHERE id='nan'"
            ).fetchone()
            assert "interval_s: must be a positive number" in msg[0]
            first = target.count("ok")
            wait_for(lambda: target.count("ok") >= first + 5, what="the good source still probed")
        finally:
            d.stop()
    finally:
        target.close()


# -- 7: SSE exhaustion ---------------------------------------------------------------


def _fat_history(db: psycopg.Connection[Any], rows: int) -> None:
    db.execute(
        "INSERT INTO status_history (source_id, from_status, to_status, error_message)"
        " SELECT 'web', 'connected', 'error', repeat('x', 2000) FROM generate_series(1, %s)",
        (rows,),
    )


def test_stream_backlog_is_paged_not_loaded_whole(db_url: str, db: psycopg.Connection[Any]) -> None:
    _fat_history(db, 20_000)
    app = create_app({"DATABASE_URL": db_url, "TESTING": True, "STREAM_KEEPALIVE": 1})
    try:
        client = app.test_client()
        tracemalloc.start()
        resp = client.get("/api/v1/stream", headers={"Last-Event-ID": "0"}, buffered=False)
        assert resp.status_code == 200
        seen = 0
        for chunk in resp.response:  # type: ignore[attr-defined]
            seen += chunk.count(b"\nevent: status\n") if isinstance(chunk, bytes) else 0
            if seen >= 600:  # past the first page
                break
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        resp.close()
        # the whole backlog is 20,000 x 2 kB = 40 MB of text alone; a page is 1 MB
        assert peak < 15 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    finally:
        pool = app.extensions.get("healthd_pool")
        if pool is not None:
            pool.close()


def _open_stream(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b": connected" not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    return s


def _get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def test_stream_cap_keeps_threads_for_others_and_gone_clients_are_noticed(
    db_url: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    g = Gunicorn(db_url, tmp_path / "g.log", workers=1, STATUSAPI_THREADS="4")
    streams: list[socket.socket] = []
    try:
        streams = [_open_stream(g.port), _open_stream(g.port)]  # the cap: 4 - 2 = 2
        status, headers, body = _get(g.port, "/api/v1/stream")
        assert status == 503 and headers["content-type"] == "application/json"
        assert json.loads(body)["error"]["code"] == "too_many_streams"
        assert int(headers["retry-after"]) > 0
        # a WebSocket holds a thread too: the same cap, counted together
        upgrade = (
            b"GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", g.port), timeout=10) as ws:
            ws.sendall(upgrade)
            head = ws.recv(4096)
            # gunicorn writes the headers and the body separately: read until the body is in
            deadline = time.monotonic() + 5
            while b"too_many_streams" not in head and time.monotonic() < deadline:
                more = ws.recv(4096)
                if not more:
                    break
                head += more
        assert head.startswith(b"HTTP/1.1 503") and b"too_many_streams" in head, head
        started = time.monotonic()
        assert _get(g.port, "/healthz")[0] == 200
        assert time.monotonic() - started < 2
        # a client that goes away frees its slot within seconds (the keepalive is 15 s)
        streams.pop().close()
        started = time.monotonic()
        _retry_stream(g.port)
        assert time.monotonic() - started < 8
    finally:
        for s in streams:
            s.close()
        g.stop()
    doc = Path(__file__).resolve().parents[2].joinpath("docs", "configuration.md").read_text()
    assert "STATUSAPI_STREAM_MAX" in doc


def _retry_stream(port: int) -> bool:
    """Wait (bounded) until a stream request is no longer refused."""
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head = s.recv(64)
        finally:
            s.close()
        if head.startswith(b"HTTP/1.1 200"):
            return True
        time.sleep(0.2)
    raise AssertionError("the gone client's slot was not freed within 8 s")


# -- 8 / 14: webhooks ------------------------------------------------------------------


def _outbox_row(db: psycopg.Connection[Any], url: str) -> None:
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('web', 'Web', 'http', '{}')"
    )
    db.execute("INSERT INTO webhooks (url) VALUES (%s)", (url,))
    db.execute(
        "INSERT INTO status_history (id, source_id, from_status, to_status) VALUES (1, 'web', 'unknown', 'connected')"
    )
    db.execute(
        "INSERT INTO webhook_outbox (webhook_id, history_id, event, payload)"
        " SELECT id, 1, 'transition', '{\"id\": 1}' FROM webhooks"
    )


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_webhook_redirect_is_a_failed_attempt(
    db: psycopg.Connection[Any], db_url: str, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    srv = Scripted(
        lambda r: (code, {"Location": "/elsewhere"}, b"") if r.path == "/hook" else (200, {}, b"ok")
    )
    try:
        _outbox_row(db, srv.base + "/hook")

        async def go() -> None:
            store = Store(db_url, "n")
            try:
                assert await Sender(store).run_once() == 1
            finally:
                await _http.close_session()
                await store.close()

        with caplog.at_level(logging.WARNING, logger="healthd.notify.sender"):
            asyncio.run(go())
        row = db.execute("SELECT delivered_at, last_error FROM webhook_outbox").fetchone()
        assert row[0] is None and row[1].startswith(f"HTTP {code}")
        assert [(r["method"], r["path"]) for r in srv.requests] == [("POST", "/hook")]
        assert f"HTTP {code}" in caplog.text
    finally:
        srv.close()


def test_webhook_at_is_utc_z_whatever_the_session_time_zone(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    db.execute(f"ALTER DATABASE {db.info.dbname} SET timezone = 'Asia/Kolkata'")
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('a', 'A', 'http', '{}')"
    )
    db.execute("INSERT INTO webhooks (url) VALUES ('http://127.0.0.1:9/hook')")
    at = datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC).timestamp()

    async def go() -> None:
        store = Store(db_url, "n")
        store.add_event(
            "a",
            Event(
                "transition", "unknown", "connected", "", at, (Observation("connected", "", at),)
            ),
        )
        assert len(await store.flush()) == 1
        await store.close()

    asyncio.run(go())
    (payload,) = db.execute("SELECT payload FROM webhook_outbox").fetchone()
    assert payload["at"] == "2026-01-02T03:04:05.250000Z"


def test_cli_json_times_are_utc_z_whatever_the_session_time_zone(
    db: psycopg.Connection[Any], db_url: str, healthd_cli: Any
) -> None:
    db.execute(f"ALTER DATABASE {db.info.dbname} SET timezone = 'Asia/Kolkata'")
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config, last_tested_at)"
        " VALUES ('a', 'A', 'tcp', '{}', '2026-01-02T03:04:05Z')"
    )
    shown = json.loads(healthd_cli("status", "--json").stdout)["sources"][0]
    assert shown["last_tested_at"] == "2026-01-02T03:04:05Z"


# -- 9: the http plugin and secret headers on redirects -------------------------------


def test_http_strips_declared_headers_on_a_cross_host_redirect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGE_API_KEY", "key-4242-edge")
    other = Scripted(lambda r: (200, {}, b"landed"), host="127.0.0.2")
    home = Scripted(
        lambda r: (
            (302, {"Location": other.base + "/x"}, b"")
            if r.path == "/away"
            else (302, {"Location": "/final"}, b"")
            if r.path == "/near"
            else (200, {}, b"home")
        )
    )
    try:
        headers = {"X-Api-Key": {"env": "EDGE_API_KEY"}, "Authorization": "Bearer plain-tok"}
        r = probe("http", {"url": home.base + "/away", "headers": headers})
        assert r.ok, r
        (landed,) = other.requests
        assert "x-api-key" not in landed["headers"] and "authorization" not in landed["headers"]
        r = probe("http", {"url": home.base + "/near", "headers": headers})
        assert r.ok, r
        assert home.requests[-1]["path"] == "/final"
        assert home.requests[-1]["headers"]["x-api-key"] == "key-4242-edge"  # same origin
    finally:
        home.close()
        other.close()


# -- 10: ai-service reads a capped body ---------------------------------------------------


def test_ai_service_body_is_capped() -> None:
    class Huge(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(64 << 20))
            self.end_headers()
            block = b"x" * (1 << 20)
            try:
                for _ in range(64):
                    self.wfile.write(block)
            except OSError:
                pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Huge)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        tracemalloc.start()
        r = probe(
            "ai-service",
            {"endpoint": f"http://127.0.0.1:{srv.server_address[1]}/v1", "api_key": "k"},
            timeout=20,
        )
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert r.status == "error" and "larger than 8 MiB" in r.message, r
        assert peak < 32 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    finally:
        srv.shutdown()
        srv.server_close()


# -- 11: redaction ------------------------------------------------------------------------


def test_userinfo_with_at_signs_is_redacted_whole(healthd_cli: Any) -> None:
    cfg = json.dumps({"url": "https://admin:p@ssw0rd@127.0.0.1:1/x"})
    assert healthd_cli("sources", "add", "web", "--plugin", "http", "--config", cfg).returncode == 0
    out = healthd_cli("sources", "show", "web", "--json")
    assert json.loads(out.stdout)["config"]["url"] == "https://127.0.0.1:1/x"
    assert "ssw0rd" not in out.stdout
    assert "ssw0rd" not in healthd_cli("sources", "export").stdout.replace(
        '"url": "https://admin:p@ssw0rd@127.0.0.1:1/x"', ""
    )


def test_argv_and_send_references_resolved_and_scrubbed(healthd_cli: Any) -> None:
    env = {"EDGE_PW": "hunter2-edge-pw"}
    cfg = json.dumps({"argv": ["sh", "-c", 'echo "login with $0"; exit 2', {"env": "EDGE_PW"}]})
    r = healthd_cli("probe", "--plugin", "command", "--config", cfg, env=env)
    assert r.returncode == 2 and "login with ***" in r.stdout and "hunter2" not in r.stdout
    assert (
        healthd_cli("sources", "add", "c", "--plugin", "command", "--config", cfg).returncode == 0
    )
    shown = json.loads(healthd_cli("sources", "show", "c", "--json", env=env).stdout)
    assert shown["config"]["argv"][3] == {"env": "EDGE_PW"}

    received: list[bytes] = []
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        received.append(conn.recv(100))
        conn.sendall(b"+OK\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    tcp = json.dumps(
        {
            "host": "127.0.0.1",
            "port": srv.getsockname()[1],
            "send": {"env": "EDGE_PW"},
            "expect": "+OK",
        }
    )
    r = healthd_cli("probe", "--plugin", "tcp", "--config", tcp, env=env)
    srv.close()
    assert r.returncode == 0, r
    assert received == [b"hunter2-edge-pw"]


@pytest.mark.parametrize(
    "url", ["password=s3cr3t host=/nonexistent leak", "postgresql://u:s3cr3t@local host:5/db"]
)
@pytest.mark.parametrize("command", [("status",), ("migrate",), ("run",)])
def test_malformed_connection_string_leaks_no_fragment(
    healthd_cli: Any, url: str, command: tuple[str, ...]
) -> None:
    r = healthd_cli(*command, env={"HEALTHD_DATABASE_URL": url}, timeout=30)
    assert r.returncode == 1
    line = one_line(r)
    assert "HEALTHD_DATABASE_URL: is not a valid libpq URL" in line
    for fragment in ("s3cr3t", "leak", "local host"):
        assert fragment not in r.stderr + r.stdout


def test_malformed_postgres_dsn_leaks_no_fragment(healthd_cli: Any) -> None:
    bad = "password=s3cr3t host=127.0.0.1 leak"
    r = healthd_cli("probe", "--plugin", "postgres", "--config", json.dumps({"dsn": bad}))
    assert r.returncode == 3 and "config.dsn: is not a valid libpq URL" in one_line(r)
    cfg = json.dumps({"dsn": {"env": "EDGE_DSN"}})
    r = healthd_cli("probe", "--plugin", "postgres", "--config", cfg, env={"EDGE_DSN": bad})
    assert r.returncode == 2 and "not a valid libpq URL" in r.stdout, r
    assert "leak" not in r.stdout + r.stderr and "s3cr3t" not in r.stdout + r.stderr


# -- 13: import and probe edge cases ----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "suffix", "needle"),
    [
        (
            '{"sources": [{"id": "web\\n", "plugin": "tcp", "config": {"host": "h", "port": 1}}]}',
            ".json",
            "entry 1 (id 'web\\n'): id: must be",
        ),
        (
            '{"sources": [{"id": "web", "name": "a\\u0000b", "plugin": "tcp", "config": {"host": "h", "port": 1}}]}',
            ".json",
            "entry 1 (id 'web'): name: must not contain a NUL",
        ),
        (
            '{"sources": [{"id": "web", "plugin": "http", "config": {"url": "http://h/", "headers": {"X": "\\u0000"}}}]}',
            ".json",
            "entry 1 (id 'web'): config.headers.X: must not contain a NUL",
        ),
        (
            '{"sources": [{"id": "web", "type": "\\ud800", "plugin": "tcp", "config": {"host": "h", "port": 1}}]}',
            ".json",
            "entry 1 (id 'web'): type: must be valid Unicode",
        ),
        (
            '{"sources": [{"id": "web", "plugin": "tcp", "config": {"host": "h", "port": 1}, "timeout_s": 1e39}]}',
            ".json",
            "entry 1 (id 'web'): timeout_s: must be",
        ),
        ('{"sources": ' + "[" * 100_000 + "]" * 100_000 + "}", ".json", "is nested too deeply"),
        ("a = " + "[" * 100_000 + "]" * 100_000, ".toml", "is nested too deeply"),
        (
            '{"sources": [{"id": "web", "plugin": "tcp", "config": {"host": "h", "port": 1'
            + "0" * 5000
            + "}}]}",
            ".json",
            "is not valid JSON",
        ),
    ],
)
def test_import_edge_cases_are_one_line_naming_the_field(
    healthd_cli: Any, tmp_path: Path, content: str, suffix: str, needle: str
) -> None:
    f = tmp_path / f"s{suffix}"
    f.write_text(content)
    r = healthd_cli("sources", "import", str(f))
    assert r.returncode == 1
    assert needle in one_line(r)


def test_a_refusal_left_to_the_database_still_names_entry_and_field(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    from healthd.config.sources import SourceSpec
    from healthd.core.errors import DatabaseError
    from healthd.store import catalog

    specs = [
        SourceSpec(id="a", plugin="tcp", config={"host": "h", "port": 1}, name="A"),
        SourceSpec(id="b", plugin="tcp", config={"host": "h", "port": 1}, name="n" * 101),
    ]
    with pytest.raises(DatabaseError) as err:
        catalog.import_sources(db_url, specs, prune=False)
    assert str(err.value).startswith("entry 2 (id 'b'): name: value too long")
    assert db.execute("SELECT count(*) FROM data_sources").fetchone() == (0,)


def test_deeply_nested_config_flag_is_one_line(healthd_cli: Any) -> None:
    deep = "[" * 50_000 + "]" * 50_000  # one argument may hold at most 128 KiB
    for args in (("probe", "--plugin", "tcp"), ("sources", "add", "x", "--plugin", "tcp")):
        r = healthd_cli(*args, "--config", deep)
        assert r.returncode in (1, 3) and "--config: is nested too deeply" in one_line(r)


def test_import_bad_utf8_is_one_line(healthd_cli: Any, tmp_path: Path) -> None:
    f = tmp_path / "s.json"
    f.write_bytes(b'{"sources": [{"id": "w\xff"}]}')
    r = healthd_cli("sources", "import", str(f))
    assert r.returncode == 1 and "is not valid UTF-8" in one_line(r)


def test_a_command_printing_only_a_control_character(healthd_cli: Any) -> None:
    for code in (0, 2):
        cfg = json.dumps({"argv": ["sh", "-c", f"printf '\\034'; exit {code}"]})
        r = healthd_cli("probe", "--plugin", "command", "--config", cfg, "--json")
        assert "IndexError" not in r.stdout + r.stderr
        assert r.returncode == (0 if code == 0 else 2), r
        assert json.loads(r.stdout)["message"] == ("OK" if code == 0 else "CRITICAL")


# -- 15 / 19: Nagios text kept, said once -------------------------------------------------


@pytest.mark.skipif(not (NAGIOS / "check_dummy").exists(), reason="monitoring-plugins-basic")
def test_nagios_warning_text_is_kept_by_the_daemon(
    healthd_cli: Any, db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    cfg = json.dumps({"argv": [str(NAGIOS / "check_dummy"), "1", "disk 91% used"]})
    assert (
        healthd_cli("sources", "add", "disk", "--plugin", "command", "--config", cfg).returncode
        == 0
    )
    d = DaemonProcess(db_url, tmp_path / "d.log")
    try:
        row = wait_for(
            lambda: db.execute(
                "SELECT connection_status, test_status, test_error_message FROM data_sources"
                " WHERE id = 'disk' AND test_status IS NOT NULL"
            ).fetchone(),
            what="a probe result",
        )
        assert row == ("connected", "success", "WARNING: disk 91% used")
    finally:
        d.stop()
    r = probe("command", {"argv": [str(NAGIOS / "check_dummy"), "2", "HTTP CRITICAL - 500"]})
    assert r.message == "CRITICAL: HTTP CRITICAL - 500"  # check_dummy's own prefix, once
    r = probe("command", {"argv": ["sh", "-c", "echo 'HTTP CRITICAL - 500 | time=1s'; exit 2"]})
    assert r.message == "HTTP CRITICAL - 500 | time=1s"
    r = probe("command", {"argv": ["sh", "-c", "echo 'WARNING: disk 91%'; exit 1"]})
    assert r.ok and r.message == "WARNING: disk 91%"


# -- 16 / 17: routing edges and gunicorn's own answers -----------------------------------


def test_no_redirects_and_options_is_json(db_url: str) -> None:
    app = create_app({"DATABASE_URL": db_url, "TESTING": True})
    client = app.test_client()
    for path in ("/api/v1/sources//events", "/api/v1//sources", "/api/v1/sources/a/b"):
        r = client.get(path)
        assert r.status_code == 404 and r.mimetype == "application/json", (path, r.status)
        assert r.get_json()["error"]["code"] == "not_found"
    r = client.options("/api/v1/sources")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert set(r.get_json()["methods"]) >= {"GET", "HEAD", "OPTIONS"}
    assert "GET" in r.headers["Allow"]
    r = client.options("/nope")
    assert r.status_code == 404 and r.mimetype == "application/json"


def _raw(port: int, request: bytes) -> tuple[int, str, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    ctype = next(
        (v for k, _, v in (ln.partition(": ") for ln in lines[1:]) if k.lower() == "content-type"),
        "",
    )
    return int(lines[0].split()[1]), ctype, body


def test_gunicorn_own_errors_are_json(
    db_url: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    g = Gunicorn(db_url, tmp_path / "g.log", workers=1)
    try:
        long_ok = "/api/v1/sources?plugin=" + "x" * 6000  # over gunicorn's default 4094
        status, ctype, _ = _raw(
            g.port, f"GET {long_ok} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        assert status == 200 and ctype.startswith("application/json")
        cases = [
            (f"GET /api/v1/sources?plugin={'x' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 414),
            (f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {'y' * 20000}\r\n\r\n".encode(), 431),
            (
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                + b"".join(b"X-%d: 1\r\n" % i for i in range(120))
                + b"\r\n",
                431,
            ),
            (b"THIS IS NOT HTTP\r\n\r\n", 400),
        ]
        for request, want in cases:
            status, ctype, body = _raw(g.port, request)
            assert status == want, (want, status, body[:200])
            assert ctype == "application/json", body[:200]
            assert json.loads(body)["error"]["message"]
        status, headers, body = _get(g.port, "/api/v1/summary", method="OPTIONS")
        assert status == 200 and headers["content-type"] == "application/json"
    finally:
        assert g.stop() == 0
    assert "Traceback" not in g.log_path.read_text()


# -- 19: a wrong password is named, fast ----------------------------------------------------


@pytest.fixture
def wrong_password_url(pg_cluster: embedded.Cluster, db_url: str) -> str:
    """A role that must give a password (scram over TCP), and a URL with the wrong one."""
    hba = pg_cluster.data_dir / "pg_hba.conf"
    line = "host all edge_pw_user 127.0.0.1/32 scram-sha-256\n"
    text = hba.read_text()
    if line not in text:
        hba.write_text(line + text)
    with psycopg.connect(pg_cluster.url(), autocommit=True) as admin:
        admin.execute("SELECT pg_reload_conf()")
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'edge_pw_user'").fetchone():
            admin.execute("CREATE ROLE edge_pw_user LOGIN PASSWORD 'right-one'")
    with psycopg.connect(db_url) as conn:
        dbname = conn.info.dbname
    return f"postgresql://edge_pw_user:wrong-one@127.0.0.1:{pg_cluster.port}/{dbname}"


def test_wrong_password_is_authentication_failed_fast(
    wrong_password_url: str, healthd_cli: Any, tmp_path: Path
) -> None:
    started = time.monotonic()
    r = healthd_cli("status", env={"HEALTHD_DATABASE_URL": wrong_password_url})
    assert r.returncode == 1
    line = one_line(r)
    assert "authentication failed" in line and "wrong-one" not in line
    assert time.monotonic() - started < 10

    app = create_app({"DATABASE_URL": wrong_password_url, "TESTING": True})
    try:
        client = app.test_client()
        for _ in range(2):
            started = time.monotonic()
            r2 = client.get("/readyz")
            took = time.monotonic() - started
            assert r2.status_code == 503 and took < 1.5, (r2.status_code, took)
            err = r2.get_json()["error"]
            assert err["code"] == "database_auth_failed"
            assert "authentication failed" in err["message"] and "unreachable" not in err["message"]
    finally:
        pool = app.extensions.get("healthd_pool")
        if pool is not None:
            pool.close()

    d = DaemonProcess(wrong_password_url, tmp_path / "d.log")
    try:
        wait_for(lambda: "authentication failed" in d.log(), timeout=15, what="the daemon's line")
        assert "database unreachable" not in d.log() and "wrong-one" not in d.log()
    finally:
        d.stop()


def test_schemathesis_cache_is_ignored() -> None:
    root = Path(__file__).resolve().parents[2]
    assert ".schemathesis/" in (root / ".gitignore").read_text().split()
    tracked = subprocess.run(
        ["git", "ls-files", ".schemathesis"], cwd=root, capture_output=True, text=True, check=False
    )
    assert tracked.stdout.strip() == ""
