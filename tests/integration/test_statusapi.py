"""statusapi through Flask's test client against a real PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from healthd.local import embedded
from statusapi import create_app
from tests.fix_api import SECRET, heartbeat
from tests.fix_procs import wait_for


def test_list_filters_and_paging(client: FlaskClient) -> None:
    body = client.get("/api/v1/sources").get_json()
    assert body["count"] == 4 and [s["id"] for s in body["sources"]] == [
        "ai-connection",
        "db",
        "new",
        "web",
    ]
    web = body["sources"][3]
    assert (
        web["pending"] == {"status": "connected", "count": 1, "needed": 3}
        and web["flapping"] is True
    )
    assert web["last_tested_at"].endswith("Z")
    assert [
        s["id"]
        for s in client.get("/api/v1/sources?status=error,disconnected").get_json()["sources"]
    ] == ["db", "web"]
    assert [s["id"] for s in client.get("/api/v1/sources?plugin=tcp").get_json()["sources"]] == [
        "new"
    ]
    assert client.get("/api/v1/sources?enabled=false").get_json()["count"] == 0
    page1 = client.get("/api/v1/sources?limit=3").get_json()
    assert page1["count"] == 3 and page1["next_cursor"]
    page2 = client.get(f"/api/v1/sources?limit=3&cursor={page1['next_cursor']}").get_json()
    assert [s["id"] for s in page2["sources"]] == ["web"] and page2["next_cursor"] is None


@pytest.mark.parametrize(
    "query",
    [
        "status=broken",
        "limit=0",
        "limit=1001",
        "limit=x",
        "enabled=maybe",
        "cursor=" + "x" * 51,
        "limit=1&limit=2",
    ],
)
def test_bad_parameters_are_400_json(client: FlaskClient, query: str) -> None:
    r = client.get(f"/api/v1/sources?{query}")
    assert r.status_code == 400 and r.is_json
    err = r.get_json()["error"]
    assert err["code"] == "bad_parameter" and query.split("=")[0] in err["message"]


def test_one_source_and_404(client: FlaskClient) -> None:
    r = client.get("/api/v1/sources/db")
    assert r.status_code == 200 and r.get_json()["config"] == {"dsn": {"env": "PG_DSN"}}
    r = client.get("/api/v1/sources/ghost")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/sources/ghost/events").status_code == 404
    r = client.get("/no/such/route")
    assert r.status_code == 404 and r.is_json and r.get_json()["error"]["code"] == "not_found"
    r = client.post("/api/v1/sources")
    assert r.status_code == 405 and r.get_json()["error"]["code"] == "method_not_allowed"
    assert "GET" in r.headers["Allow"]


def test_secret_appears_in_no_route(client: FlaskClient) -> None:
    routes = [
        "/api/v1/sources",
        "/api/v1/sources/web",
        "/api/v1/sources/ai-connection",
        "/api/v1/sources/new",
        "/api/v1/sources/web/events",
        "/api/v1/events",
        "/api/v1/summary",
        "/api/ai/connections",
        "/api/ai/connection-status",
        "/metrics",
        "/openapi.json",
        "/healthz",
        "/readyz",
    ]
    for route in routes:
        r = client.get(route)
        assert SECRET not in r.get_data(as_text=True), route
    web = client.get("/api/v1/sources/web").get_json()["config"]
    assert web["headers"] == {"Authorization": ""} and web["url"] == "https://127.0.0.1/?token=***"
    assert client.get("/api/v1/sources/ai-connection").get_json()["config"]["api_key"] == ""


def test_events(client: FlaskClient) -> None:
    ev = client.get("/api/v1/sources/web/events").get_json()["events"]
    assert [(e["from"], e["to"]) for e in ev] == [("connected", "error"), ("unknown", "connected")]
    assert client.get("/api/v1/sources/web/events?limit=1001").status_code == 400
    feed = client.get("/api/v1/events?after=0&limit=2").get_json()
    assert [e["source_id"] for e in feed["events"]] == ["web", "db"] and feed["next_after"] == feed[
        "events"
    ][1]["id"]
    rest = client.get(f"/api/v1/events?after={feed['next_after']}").get_json()
    assert [(e["source_id"], e["to"]) for e in rest["events"]] == [("web", "error")]


def test_summary_and_readiness(client: FlaskClient, db: psycopg.Connection[Any]) -> None:
    s = client.get("/api/v1/summary").get_json()
    assert s["counts"] == {"unknown": 1, "connected": 1, "disconnected": 1, "error": 1}
    assert s["flapping"] == 1 and s["daemon"]["fresh"] is False
    r = client.get("/readyz")
    assert (
        r.status_code == 503
        and "no daemon has ever sent a heartbeat" in r.get_json()["error"]["message"]
    )
    heartbeat(db, age_s=120)
    r = client.get("/readyz")
    assert r.status_code == 503 and "120 s old" in r.get_json()["error"]["message"]
    db.execute("UPDATE daemon_nodes SET heartbeat_at = now()")
    assert client.get("/readyz").status_code == 200
    assert client.get("/api/v1/summary").get_json()["daemon"]["fresh"] is True


def test_original_ai_routes(client: FlaskClient, app: Flask, db: psycopg.Connection[Any]) -> None:
    db.execute(
        "UPDATE data_sources SET last_tested_at = '2025-10-20T10:30:45.123456Z'"
        " WHERE id='ai-connection'"
    )
    c = client.get("/api/ai/connections").get_json()
    assert c == {
        "endpoint": "configured",
        "apiKey": "",
        "enabled": True,
        "lastTested": "2025-10-20T10:30:45.123Z",
        "testStatus": "success",
    }
    s = client.get("/api/ai/connection-status").get_json()
    assert s == {
        "status": "configured",
        "lastTested": "2025-10-20T10:30:45.123Z",
        "testStatus": "success",
        "endpoint": "configured",
        "connectionStatus": "connected",
        "errorMessage": None,
    }
    db.execute(
        "UPDATE data_sources SET connection_status='error', test_status='failed',"
        " test_error_message='API key rejected (401)', enabled=false WHERE id='ai-connection'"
    )
    s = client.get("/api/ai/connection-status").get_json()
    assert s["status"] == "configured" and s["connectionStatus"] == "error"
    assert s["errorMessage"] == "API key rejected (401)"
    assert client.get("/api/ai/connections").get_json()["enabled"] is False
    db.execute("DELETE FROM data_sources WHERE id='ai-connection'")
    c = client.get("/api/ai/connections").get_json()
    assert c == {
        "endpoint": "not_configured",
        "apiKey": "",
        "enabled": False,
        "lastTested": None,
        "testStatus": None,
    }
    assert client.get("/api/ai/connection-status").get_json() == {
        "status": "not_configured",
        "lastTested": None,
        "testStatus": None,
        "endpoint": "not_configured",
        "connectionStatus": "unknown",
        "errorMessage": None,
    }
    # the document says the same: exactly these keys, the original's values
    paths = client.get("/openapi.json").get_json()["paths"]
    schemas = {
        route: paths[route]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        for route in ("/api/ai/connections", "/api/ai/connection-status")
    }
    for schema in schemas.values():
        assert schema["additionalProperties"] is False
        assert schema["properties"]["lastTested"]["pattern"].endswith(r"\.\d{3}Z$")
    assert set(schemas["/api/ai/connections"]["required"]) == set(c)
    status_schema = schemas["/api/ai/connection-status"]
    assert status_schema["properties"]["status"]["enum"] == ["configured", "not_configured"]
    assert set(status_schema["required"]) == set(status_schema["properties"])


def test_etag_and_304(client: FlaskClient, db: psycopg.Connection[Any]) -> None:
    r = client.get("/api/v1/sources/web")
    etag = r.headers["ETag"]
    again = client.get("/api/v1/sources/web", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    db.execute("UPDATE data_sources SET name='Web 2' WHERE id='web'")
    changed = client.get("/api/v1/sources/web", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_bearer_tokens(db_url: str, db: psycopg.Connection[Any]) -> None:
    app = create_app({"DATABASE_URL": db_url, "TOKENS": ("t0k3n-a", "t0k3n-b")})
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200
        r = client.get("/api/v1/sources")
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthorized"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert (
            client.get("/api/v1/sources", headers={"Authorization": "Bearer wrong"}).status_code
            == 401
        )
        assert (
            client.get("/api/v1/sources", headers={"Authorization": "Bearer t0k3n-b"}).status_code
            == 200
        )
        assert (
            client.get("/metrics", headers={"Authorization": "Bearer t0k3n-a"}).status_code == 200
        )
    finally:
        if app.extensions.get("healthd_pool"):
            app.extensions["healthd_pool"].close()


def test_cors(db_url: str) -> None:
    app = create_app({"DATABASE_URL": db_url, "CORS_ORIGINS": ("https://dash.example",)})
    client = app.test_client()
    r = client.get("/healthz", headers={"Origin": "https://dash.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://dash.example"
    assert (
        "Access-Control-Allow-Origin"
        not in client.get("/healthz", headers={"Origin": "https://evil.example"}).headers
    )


def test_metrics_text(client: FlaskClient) -> None:
    client.get("/api/v1/sources")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'healthd_sources{enabled="true",plugin="http",status="error"} 1.0' in text
    assert "healthd_sources_flapping" in text and "statusapi_requests_total" in text


def test_openapi_covers_every_route(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = set(doc["paths"])
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        assert path in documented, path


def test_database_down_is_503_and_recovers(private_cluster: embedded.Cluster) -> None:
    cluster = private_cluster
    app = create_app({"DATABASE_URL": cluster.url()})
    c = app.test_client()
    try:
        assert c.get("/api/v1/sources").status_code == 200
        cluster.stop()
        r = c.get("/api/v1/sources")
        assert r.status_code == 503 and r.headers["Retry-After"] == "5"
        assert r.get_json()["error"]["code"] == "database_unavailable"
        assert c.get("/readyz").status_code == 503 and c.get("/healthz").status_code == 200
        cluster.start()
        wait_for(lambda: c.get("/api/v1/sources").status_code == 200, timeout=20, what="recovery")
    finally:
        app.extensions["healthd_pool"].close()


def test_metrics_pass_promtool(client: FlaskClient) -> None:
    import shutil
    import subprocess

    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    client.get("/api/v1/sources")
    text = client.get("/metrics").get_data()
    proc = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_nul_characters_and_huge_ids_are_400(client: FlaskClient) -> None:
    assert client.get("/api/v1/sources?plugin=a%00b").status_code == 400
    assert client.get("/api/v1/sources/a%00b").status_code == 400
    r = client.get("/api/v1/events?after=40310575958123651072")
    assert r.status_code == 400 and "after" in r.get_json()["error"]["message"]
    assert client.get("/api/v1/sources?cursor=").status_code == 400
