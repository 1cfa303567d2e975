"""Conditions on real HTTP answers, the ai-service providers against fake model-list
endpoints, a kind whose extra is missing, and no secret of a new kind in the API, the
CLI's output or the daemon's log."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd import plugins
from healthd.core.errors import ConfigError
from healthd.plugins import httpclient
from healthd.plugins.base import ProbeResult
from tests.fix_kinds import SECRET, FakeProviders, MariaDb, RedisServer
from tests.fix_procs import invoke, wait_for
from tests.fix_servers import Answer, Request, Scripted, make_cert


def probe(name: str, config: dict[str, Any], timeout: float = 3.0) -> ProbeResult:
    async def once() -> ProbeResult:
        plugin = plugins.create(name, config)
        try:
            return await plugins.run_check(plugin, timeout)
        finally:
            await plugin.close()
            await httpclient.close_session()

    return asyncio.run(once())


ANSWERS: dict[str, bytes] = {
    "/health": json.dumps({"status": "UP", "checks": {"db": "UP"}, "version": "1.2"}).encode(),
    "/down": json.dumps({"status": "DOWN", "checks": {"db": "DOWN"}}).encode(),
    "/html": b"<html>ok</html>",
    "/big": b'{"pad": "' + b"x" * (2 << 20) + b'"}',
}


def _answer(req: Request) -> Answer:
    if req.path == "/slow":
        time.sleep(0.3)
    return 200, {"Content-Type": "application/json"}, ANSWERS.get(req.path, ANSWERS["/health"])


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cert, key = make_cert(tmp_path_factory.mktemp("https5"), days=5)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    plain, secure = Scripted(_answer), Scripted(_answer, tls=ctx)
    yield {"base": plain.base, "https": secure.base, "cert": str(cert)}
    for srv in (plain, secure):
        srv.close()


def test_expect_json(answers: dict[str, Any]) -> None:
    conds = [{"path": "status", "equals": "UP"}, {"path": "checks.db", "equals": "UP"}]
    r = probe("http", {"url": answers["base"] + "/health", "expect_json": conds})
    assert (r.status, r.message) == ("connected", "HTTP 200")
    r = probe("http", {"url": answers["base"] + "/down", "expect_json": conds})
    assert r.status == "error"
    assert r.message == (
        "HTTP 200, but status is 'DOWN', expected 'UP'; checks.db is 'DOWN', expected 'UP'"
    )
    exists = [{"path": "version", "exists": True}]
    assert probe("http", {"url": answers["base"] + "/health", "expect_json": exists}).ok
    r = probe("http", {"url": answers["base"] + "/down", "expect_json": exists})
    assert (r.status, r.message) == ("error", "HTTP 200, but version is missing")
    r = probe("http", {"url": answers["base"] + "/html", "expect_json": exists})
    assert (r.status, r.message) == ("error", "HTTP 200, but expect_json: the body is not JSON")
    r = probe("http", {"url": answers["base"] + "/big", "expect_json": exists})
    assert r.status == "error" and "the body is longer than the 1048576 bytes read" in r.message


def test_max_latency_ms(answers: dict[str, Any]) -> None:
    assert probe("http", {"url": answers["base"] + "/health", "max_latency_ms": 2000}).ok
    r = probe("http", {"url": answers["base"] + "/slow", "max_latency_ms": 100})
    assert r.status == "error", r
    seen = int(r.message.split("answered in ")[1].split(" ms")[0])
    assert seen >= 300 and r.message == f"HTTP 200, but answered in {seen} ms, over 100 ms"


def test_min_cert_days(answers: dict[str, Any]) -> None:
    config = {"url": answers["https"] + "/health", "ca_file": answers["cert"]}
    assert probe("http", {**config, "min_cert_days": 3}).ok
    r = probe("http", {**config, "min_cert_days": 14})
    assert r.status == "error" and r.message.startswith("HTTP 200, but the TLS certificate has")
    assert "days left (expires " in r.message and r.message.endswith("), under 14")


def test_a_bad_condition_is_refused_at_sources_add(db_url: str) -> None:
    config = {"url": "https://a/", "expect_json": [{"path": "status[", "equals": "UP"}]}
    r = invoke(
        "sources",
        "add",
        "api",
        "--plugin",
        "http",
        "--config",
        json.dumps(config),
        env={"HEALTHD_DATABASE_URL": db_url},
    )
    assert r.returncode == 1, r
    assert r.stderr.strip() == (
        "healthd: source 'api': config.expect_json[0].path: 'status[' is not a valid"
        " JMESPath expression (it ends too soon at column 7)"
    ), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# -- AI providers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "path", "model", "other_name"),
    [
        ("anthropic", "/anthropic/v1", "claude-test-2", None),
        ("azure", "/azure", "chat-prod", "gpt-4o"),
        ("gemini", "/gemini/v1beta", "gemini-test-flash", "models/gemini-test-flash"),
        ("ollama-proxied", "/ollama-proxied", "llama-test", "llama-test:latest"),
    ],
)
def test_providers_right_key_wrong_key_model_missing(
    providers: FakeProviders, provider: str, path: str, model: str, other_name: str | None
) -> None:
    name = provider.removesuffix("-proxied")
    config = {"endpoint": providers.base + path, "provider": name, "api_key": SECRET}
    r = probe("ai-service", config)
    assert r.ok and r.message.endswith(" models"), r
    assert probe("ai-service", {**config, "model": model}).ok
    if other_name:
        assert probe("ai-service", {**config, "model": other_name}).ok
    r = probe("ai-service", {**config, "api_key": "sk-wrong-key-0000"})
    assert r.status == "error" and r.message.startswith("API key rejected ("), r
    r = probe("ai-service", {**config, "model": "no-such-model"})
    assert r.status == "error" and r.message.startswith("model 'no-such-model' is not offered")


def test_providers_send_the_key_their_own_way(providers: FakeProviders) -> None:
    providers.seen.clear()
    for name, path in (
        ("anthropic", "/anthropic/v1"),
        ("azure", "/azure"),
        ("gemini", "/gemini/v1beta"),
    ):
        assert probe(
            "ai-service", {"endpoint": providers.base + path, "provider": name, "api_key": SECRET}
        ).ok
    anthropic, azure, gemini = providers.seen
    assert anthropic["path"] == "/anthropic/v1/models?limit=1000"
    assert anthropic["headers"]["x-api-key"] == SECRET
    assert anthropic["headers"]["anthropic-version"] == "2023-06-01"
    assert azure["path"] == "/azure/openai/deployments?api-version=2022-12-01"
    assert azure["headers"]["api-key"] == SECRET
    assert gemini["path"] == "/gemini/v1beta/models?pageSize=1000"  # never ?key=
    assert gemini["headers"]["x-goog-api-key"] == SECRET
    for seen in providers.seen:
        assert "authorization" not in seen["headers"] and SECRET not in seen["path"]


def test_ollama_needs_no_key(providers: FakeProviders) -> None:
    providers.seen.clear()
    config = {"endpoint": providers.base + "/ollama", "provider": "ollama"}
    r = probe("ai-service", config)
    assert (r.status, r.message) == ("connected", "1 models")
    assert probe("ai-service", {**config, "model": "llama-test"}).ok
    r = probe("ai-service", {**config, "model": "mistral"})
    assert (r.status, r.message) == ("error", "model 'mistral' is not offered (1 models listed)")
    assert providers.seen[0]["path"] == "/ollama/api/tags"
    assert "authorization" not in providers.seen[0]["headers"]


def test_provider_config_is_checked() -> None:
    with pytest.raises(ConfigError) as caught:
        plugins.create("ai-service", {"endpoint": "https://x/v1", "provider": "anthropic"})
    assert str(caught.value) == (
        "config.api_key: is required by provider anthropic (also accepted as apiKey)"
    )
    with pytest.raises(ConfigError) as caught:
        plugins.create(
            "ai-service", {"endpoint": "https://x/v1", "provider": "bard", "api_key": "k"}
        )
    assert caught.value.field == "config.provider" and "openai, anthropic" in caught.value.problem


# -- a missing extra --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "module", "config"),
    [
        ("grpc", "grpc", {"target": "127.0.0.1:1"}),
        ("redis", "redis", {"url": "redis://127.0.0.1:1/0"}),
        ("mysql", "aiomysql", {"dsn": "mysql://u:p@127.0.0.1:1/db"}),
    ],
)
def test_a_missing_extra_is_one_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, kind: str, module: str, config: dict[str, Any]
) -> None:
    # what importing a package that is not installed does: sys.modules[name] = None makes
    # every import of it fail, and find_spec say it is not there
    monkeypatch.setitem(sys.modules, module, None)
    r = probe(kind, config)  # the source is still valid: it fails alone, saying why
    assert (r.status, r.message) == (
        "error",
        f"the {kind} plugin needs the {kind!r} extra: pip install 'healthd[{kind}]'",
    )
    listing = invoke("plugins")
    assert f"    extra {kind!r}: NOT installed (pip install 'healthd[{kind}]')" in listing.stdout
    listed = {p["name"]: p for p in json.loads(invoke("plugins", "--json").stdout)["plugins"]}
    assert listed[kind]["extra"] == kind and listed[kind]["installed"] is False
    assert listed["tls"].get("extra") is None  # the standard library's: no extra


def test_every_extra_is_installed_here() -> None:
    listed = json.loads(invoke("plugins", "--json").stdout)["plugins"]
    extras = {p["name"]: p["installed"] for p in listed if "extra" in p}
    assert extras == {"grpc": True, "mysql": True, "redis": True}


# -- no secret anywhere -----------------------------------------------------------------


def test_no_secret_of_a_new_kind_in_api_cli_or_logs(
    db: psycopg.Connection[Any],
    db_url: str,
    daemons: Any,
    healthd_cli: Any,
    redis_server: RedisServer,
    mariadb: MariaDb,
    providers: FakeProviders,
    tmp_path: Path,
) -> None:
    """Sources of every new kind holding the secret (in a URL, a DSN, a password field,
    a key), some right and some wrong, probed by a real daemon: the secret is in none of
    the API's answers, the CLI's output or the daemon's log."""
    sources = {
        "cache": ("redis", {"url": redis_server.url()}),
        "cache-bad": (
            "redis",
            {"url": f"redis://127.0.0.1:{redis_server.port}/0", "password": SECRET + "x"},
        ),
        "db": ("mysql", {"dsn": mariadb.dsn()}),
        "db-bad": ("mysql", {"dsn": mariadb.dsn(password=SECRET + "x")}),
        "claude": (
            "ai-service",
            {
                "endpoint": providers.base + "/anthropic/v1",
                "provider": "anthropic",
                "api_key": SECRET,
            },
        ),
        "gemini-bad": (
            "ai-service",
            {
                "endpoint": providers.base + "/gemini/v1beta",
                "provider": "gemini",
                "api_key": SECRET + "x",
            },
        ),
    }
    entries = [{"id": sid, "plugin": p, "config": c} for sid, (p, c) in sources.items()]
    path = tmp_path / "sources.json"
    path.write_text(json.dumps({"sources": entries}))
    outputs = [healthd_cli("sources", "import", str(path))]
    assert outputs[0].returncode == 0, outputs[0]
    daemon = daemons()

    def probed() -> bool:
        rows = db.execute(
            "SELECT count(*) FROM data_sources WHERE last_tested_at IS NOT NULL"
        ).fetchone()
        return rows is not None and rows[0] == len(sources)

    wait_for(probed, timeout=30, what="every source probed")
    statuses = dict(db.execute("SELECT id, connection_status FROM data_sources").fetchall())
    assert statuses == {
        "cache": "connected",
        "cache-bad": "error",
        "db": "connected",
        "db-bad": "error",
        "claude": "connected",
        "gemini-bad": "error",
    }
    for args in (
        ("sources", "list", "--json"),
        ("sources", "list"),
        ("status", "--json"),
        ("status",),
        *(("sources", "show", sid, "--json") for sid in sources),
        *(("probe", sid) for sid in sources),
        ("sources", "export"),
    ):
        # in process: the same entry point and error policy, without a start-up each
        outputs.append(invoke(*args, env={"HEALTHD_DATABASE_URL": db_url}))
    from statusapi import create_app

    app = create_app(
        {"DATABASE_URL": db_url.replace("postgres@", "healthd_readonly@"), "TESTING": True}
    )
    try:
        client = app.test_client()
        pages = [client.get("/api/v1/sources").get_data(as_text=True)]
        pages += [client.get(f"/api/v1/sources/{sid}").get_data(as_text=True) for sid in sources]
        pages += [client.get(f"/status/{sid}").get_data(as_text=True) for sid in sources]
    finally:
        pool = app.extensions.get("healthd_pool")
        if pool is not None:
            pool.close()
    daemon.stop()
    assert '"redis://127.0.0.1:' in pages[0]  # the URL is shown, without its password
    everything = "\n".join([*pages, daemon.log(), *(o.stdout + o.stderr for o in outputs)])
    assert SECRET not in everything
    assert "authentication failed" in everything and "API key rejected (400)" in everything


def test_the_detail_page_shows_an_http_sources_conditions(
    client: Any, db: psycopg.Connection[Any]
) -> None:
    config = {
        "url": "https://api.example.com/health",
        "expect_json": [{"path": "status", "equals": "UP"}, {"path": "version", "exists": True}],
        "max_latency_ms": 500,
        "min_cert_days": 14,
    }
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('api', 'API', 'http', %s)",
        (json.dumps(config),),
    )
    html = client.get("/status/api").get_data(as_text=True)
    block = html.split('data-conditions="5"', 1)[1].split("</section>", 1)[0]
    assert '<h2 id="cond-h">Conditions</h2>' in block
    assert [line.split("</li>")[0] for line in block.split("<li>")[1:]] == [
        "HTTP status 2xx or 3xx",
        "JSON status equals &#39;UP&#39;",
        "JSON version exists",
        "answers within 500 ms",
        "TLS certificate valid for at least 14 more days",
    ]
    # a kind without conditions on an answer has no such block
    assert "data-conditions" not in client.get("/status/db").get_data(as_text=True)
