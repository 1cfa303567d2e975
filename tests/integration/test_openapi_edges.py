"""The OpenAPI document and the behaviour agree on the edges schemathesis found: a value
the schema allows is answered, one it refuses is a 400 naming the parameter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from statusapi import create_app


@pytest.fixture
def client(db_url: str) -> Iterator[FlaskClient]:
    app = create_app({"DATABASE_URL": db_url, "TESTING": True})
    yield app.test_client()
    pool = app.extensions.get("healthd_pool")  # made on first use only
    if pool is not None:
        pool.close()


def param(doc: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    params = doc["paths"][path]["get"]["parameters"]
    return next(p["schema"] for p in params if p["name"] == name)


def bad_parameter(resp: Any, name: str) -> bool:
    body = resp.get_json()
    return bool(
        resp.status_code == 400
        and body["error"]["code"] == "bad_parameter"
        and body["error"]["message"].startswith(f"{name}: ")
    )


def test_webhook_ids_past_32_bits_are_refused_and_the_schema_says_so(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    schema = param(doc, "/api/v1/webhooks/deliveries", "webhook")
    assert schema["maximum"] == 2**31 - 1
    assert client.get("/api/v1/webhooks/deliveries?webhook=2147483647").status_code == 200
    assert bad_parameter(client.get("/api/v1/webhooks/deliveries?webhook=2147483648"), "webhook")


@pytest.mark.parametrize("path", ["/api/v1/sources/{source_id}/latency"])
def test_an_empty_window_is_refused_like_any_value_not_listed(
    client: FlaskClient, db: Any, path: str
) -> None:
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES ('w', 'w', 'http', '{}')"
    )
    doc = client.get("/openapi.json").get_json()
    schema = param(doc, path, "window")
    assert "" not in schema["enum"] and schema["default"] == "1h"
    url = path.replace("{source_id}", "w")
    absent = client.get(url)
    assert absent.status_code == 200 and absent.get_json()["window"] == "1h"
    for value in ("", "bogus", "1H"):
        assert bad_parameter(client.get(f"{url}?window={value}"), "window"), value
    assert client.get(f"{url}?window=24h").get_json()["window"] == "24h"


@pytest.mark.parametrize(
    ("query", "header", "refused"),
    [
        ("after=-1", "5", "after"),  # the header wins, but a bad ?after= is still a 400
        ("after=9223372036854775808", "5", "after"),
        ("after=", "5", "after"),  # the schema says integer: empty is not one
        ("after=x", None, "after"),
        ("last_event_id=-3", "5", "last_event_id"),
        ("after=5", "-1", "Last-Event-ID"),
        ("after=5", "9223372036854775808", "Last-Event-ID"),
    ],
)
def test_stream_checks_every_resume_point_given(
    client: FlaskClient, query: str, header: str | None, refused: str
) -> None:
    doc = client.get("/openapi.json").get_json()
    for name in ("after", "Last-Event-ID"):
        schema = param(doc, "/api/v1/stream", name)
        assert (schema["minimum"], schema["maximum"]) == (0, 2**63 - 1)
    headers = {"Last-Event-ID": header} if header is not None else {}
    resp = client.get(f"/api/v1/stream?{query}", headers=headers, buffered=False)
    try:
        assert bad_parameter(resp, refused), resp.get_data()
    finally:
        resp.close()


def test_stream_with_both_resume_points_valid_resumes_from_the_header(
    client: FlaskClient, db: Any
) -> None:
    db.execute(
        "INSERT INTO status_history (source_id, from_status, to_status)"
        " SELECT 's' || g, 'unknown', 'connected' FROM generate_series(1, 3) g"
    )
    first = db.execute("SELECT min(id) FROM status_history").fetchone()[0]
    resp = client.get(
        f"/api/v1/stream?after={first}", headers={"Last-Event-ID": str(first + 1)}, buffered=False
    )
    try:
        assert resp.status_code == 200
        body = b""
        for chunk in resp.response:  # type: ignore[attr-defined]
            body += chunk if isinstance(chunk, bytes) else chunk.encode()
            if b"\nevent: status\n" in body:
                break
        assert f"id: {first + 2}\n".encode() in body  # after the header's id, not ?after='s
        assert f"id: {first + 1}\n".encode() not in body
    finally:
        resp.close()
