"""The status page, uptime, latency and badges through Flask's test client against a
real PostgreSQL (the browser tests are in test_status_browser.py)."""

from __future__ import annotations

import gzip
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from healthd.core import rollups
from tests import fix_db
from tests.fix_api import readonly_app

DAY = 86400


def add_source(db: psycopg.Connection[Any], sid: str, typ: str = "service", **cols: Any) -> None:
    """A source of the page's tests: titled, typed, with a secret in its config."""
    config = cols.pop("config", {"url": "http://127.0.0.1:9/", "password": "hunter2"})
    fix_db.add_source(db, sid, "http", config, **{"name": sid.title(), "type": typ, **cols})


def transition(db: psycopg.Connection[Any], sid: str, frm: str, to: str, at: datetime) -> None:
    db.execute(
        "INSERT INTO status_history (source_id, from_status, to_status, at) VALUES (%s,%s,%s,%s)",
        (sid, frm, to, at),
    )


@pytest.fixture
def client(db_url: str) -> Iterator[FlaskClient]:
    """The page's tests seed their own sources: the API on an empty database."""
    with readonly_app(db_url) as app:
        yield app.test_client()


def db_now(db: psycopg.Connection[Any]) -> datetime:
    row = db.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def test_root_redirects_to_status(client: FlaskClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/status")


def test_every_source_is_rendered_with_its_hooks(
    client: FlaskClient, db: psycopg.Connection[Any]
) -> None:
    now = db_now(db)
    add_source(db, "web", created_at=now - timedelta(days=3))
    add_source(db, "db", "database", created_at=now - timedelta(days=3))
    add_source(db, "fresh", created_at=now)
    transition(db, "web", "unknown", "connected", now - timedelta(days=2))
    transition(db, "db", "unknown", "error", now - timedelta(hours=1))
    db.execute("UPDATE data_sources SET connection_status='connected' WHERE id='web'")
    db.execute(
        "UPDATE data_sources SET connection_status='error', status_changed_at=now()"
        " - interval '1 hour', pending_status='connected', pending_count=2 WHERE id='db'"
    )
    html = client.get("/status").get_data(as_text=True)
    for sid, status in (("web", "connected"), ("db", "error"), ("fresh", "unknown")):
        assert f'data-source-id="{sid}" data-status="{status}"' in html
    assert 'data-overall="degraded"' in html  # 1 of 3 down
    assert "Partial outage: 1 of 3 sources not connected" in html
    assert "2/3 toward connected" in html and "data-since>1 h</time>" in html
    for w in ("24h", "7d", "30d"):
        assert html.count(f'data-uptime-window="{w}"') == 3
    bars = re.findall(r"<svg class=bar .*?</svg>", html)
    assert len(bars) == 3 and all(b.count("<rect ") == 90 for b in bars)
    today = now.astimezone(UTC).date()
    first = re.search(r"data-first=(\S+)", bars[0])
    assert first and first[1] == (today - timedelta(days=89)).isoformat()
    assert f"{today.isoformat()}: " in bars[0].rsplit("<title>", 1)[1]  # the last run
    assert "hunter2" not in html
    assert '<h2 id="recent-h">' in html


def test_banner_outage_and_operational(client: FlaskClient, db: psycopg.Connection[Any]) -> None:
    add_source(db, "a", connection_status="connected")
    assert 'data-overall="operational"' in client.get("/status").get_data(as_text=True)
    db.execute("UPDATE data_sources SET connection_status='disconnected'")
    assert 'data-overall="outage"' in client.get("/status").get_data(as_text=True)


def test_page_follows_new_transitions(client: FlaskClient, db: psycopg.Connection[Any]) -> None:
    """The per-worker timeline follows the table: a transition after the first render
    changes the next render's figures."""
    now = db_now(db)
    add_source(db, "web", created_at=now - timedelta(days=1))
    transition(db, "web", "unknown", "connected", now - timedelta(hours=20))
    first = client.get("/status").get_data(as_text=True)
    assert 'data-uptime-window="24h">100 %' in first
    transition(db, "web", "connected", "error", now - timedelta(hours=10))
    second = client.get("/status").get_data(as_text=True)
    assert 'data-uptime-window="24h">50.00 %' in second


def test_detail_page(client: FlaskClient, db: psycopg.Connection[Any]) -> None:
    now = db_now(db)
    add_source(
        db,
        "web",
        created_at=now - timedelta(days=1),
        test_status="failed",
        test_error_message="HTTP 500",
        last_tested_at=now,
    )
    transition(db, "web", "unknown", "connected", now - timedelta(hours=5))
    html = client.get("/status/web").get_data(as_text=True)
    assert 'data-source-id="web"' in html and '<svg data-chart="latency"' in html
    for w in ("24h", "7d", "30d", "90d"):
        assert f'data-uptime-window="{w}"' in html
    assert "HTTP 500" in html and "hunter2" not in html
    assert client.get("/status/web?window=7d").status_code == 200
    assert client.get("/status/web?window=2y").status_code == 400
    missing = client.get("/status/nope")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_page_is_gzipped_for_browsers_and_static_is_cached(
    client: FlaskClient, db: psycopg.Connection[Any]
) -> None:
    for i in range(100):  # one of them down, so no group collapses: every row has its bar
        add_source(db, f"s{i:03}", connection_status="error" if i == 0 else "connected")
    plain = client.get("/status")
    zipped = client.get("/status", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.headers["Content-Encoding"] == "gzip"

    def stable(b: bytes) -> str:  # the render time differs between the two requests
        return re.sub(r'data-(rendered|heartbeat)="[^"]*"', "", b.decode())

    assert stable(gzip.decompress(zipped.get_data())) == stable(plain.get_data())
    html = plain.get_data(as_text=True)
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert len(assets) == 3  # the stylesheet, the script, the favicon
    static_bytes = 0
    for url in assets:
        with client.get(url) as resp:  # a file response: closed, or the file stays open
            assert resp.status_code == 200 and "max-age" in resp.headers["Cache-Control"]
            etag = resp.headers["ETag"]
            static_bytes += len(resp.get_data())
        with client.get(url, headers={"If-None-Match": etag}) as again:
            assert again.status_code == 304
    # the page's own bytes as a browser fetches them, for 100 sources (docs/status-page.md: < 100 KB)
    total = len(zipped.get_data()) + static_bytes
    sys.stderr.write(
        f"\n100 sources: HTML {len(plain.get_data())} B raw, {len(zipped.get_data())} B gzip;"
        f" CSS+JS {static_bytes} B; total {total} B\n"
    )
    assert total < 100_000
    assert plain.get_data(as_text=True).count("<rect x=") == 100 * 90


def test_long_page_collapses_groups_that_are_all_connected(
    client: FlaskClient, db: psycopg.Connection[Any]
) -> None:
    for i in range(35):
        add_source(db, f"svc{i:02}", "service", connection_status="connected")
    for i in range(5):
        add_source(db, f"db{i}", "database", connection_status="error" if i == 0 else "connected")
    html = client.get("/status").get_data(as_text=True)
    service = html[html.index('data-group="service"') :]
    database = html[html.index('data-group="database"') : html.index('data-group="service"')]
    assert service.split(">", 1)[0].endswith('"')  # no "open": collapsed
    assert "35 sources<span data-all-up>, all connected</span>" in service
    assert 'data-group="database" open' in html
    assert service[: service.index("</details>")].count('class="row mini"') == 35
    assert "<svg class=bar" not in service[: service.index("</details>")]
    assert database.count("<rect x=") == 5 * 90
    assert html.count('data-source-id="') == 40


def test_uptime_route_is_exact(client: FlaskClient, db: psycopg.Connection[Any]) -> None:
    now = db_now(db)
    add_source(db, "web", created_at=now - timedelta(days=40))
    t0 = now - timedelta(days=35)
    transition(db, "web", "unknown", "connected", t0)
    down_at = now - timedelta(hours=30)  # an outage that started before the 24 h window
    up_at = now - timedelta(hours=20)
    transition(db, "web", "connected", "disconnected", down_at)
    transition(db, "web", "disconnected", "connected", up_at)
    body = client.get("/api/v1/sources/web/uptime").get_json()
    # the 24 h window ends when the route runs, not at `now`: the outage's part in it is
    # 4 h less however long the request took to start (0.2 s on a loaded machine)
    took = (db_now(db) - now).total_seconds()
    w = body["windows"]
    assert 4 * 3600 - took - 0.01 <= w["24h"]["down_s"] <= 4 * 3600 + 0.01
    assert w["7d"]["down_s"] == pytest.approx(10 * 3600, abs=0.1)
    assert w["30d"]["unknown_s"] == 0
    assert w["90d"]["unknown_s"] == pytest.approx(5 * DAY, abs=0.1)  # created, unconfirmed
    assert w["90d"]["up_s"] + w["90d"]["down_s"] == pytest.approx(35 * DAY, abs=1)
    assert w["24h"]["maintenance_s"] == 0
    assert w["24h"]["uptime"] == pytest.approx(100 * 20 / 24, abs=1e-3)
    assert len(body["daily"]) == 90 and body["daily"][-1]["date"] == now.date().isoformat()
    assert sum(d["down_s"] for d in body["daily"]) == pytest.approx(10 * 3600, abs=0.1)
    assert client.get("/api/v1/sources/nope/uptime").status_code == 404


def test_latency_from_rollups(client: FlaskClient, db: psycopg.Connection[Any]) -> None:
    add_source(db, "web")
    hist = [0] * rollups.SLOTS
    hist[rollups.slot(20)] = 90
    hist[rollups.slot(400)] = 10
    db.execute(
        "INSERT INTO latency_rollups (source_id, bucket, count, failures, max_ms, hist)"
        " VALUES ('web', date_bin('1 minute', now(), 'epoch'), 101, 1, 480, %s)",
        (hist,),
    )
    body = client.get("/api/v1/sources/web/latency?window=1h").get_json()
    (b,) = body["buckets"]
    assert (b["count"], b["failures"], b["max_ms"]) == (101, 1, 480)
    assert 10 < b["p50_ms"] <= 25 and 250 < b["p95_ms"] <= 480
    assert client.get("/api/v1/sources/web/latency?window=5m").status_code == 400
    assert client.get("/api/v1/sources/nope/latency").status_code == 404


def test_ws_route_without_upgrade_is_json_400(client: FlaskClient) -> None:
    resp = client.get("/api/v1/ws")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "bad_request"


def test_maintenance_is_apart_in_uptime_and_on_the_page(
    client: FlaskClient, db: psycopg.Connection[Any]
) -> None:
    now = db_now(db)
    add_source(db, "web", created_at=now - timedelta(days=1), connection_status="error")
    add_source(db, "api", created_at=now - timedelta(days=1), connection_status="connected")
    transition(db, "web", "unknown", "connected", now - timedelta(hours=10))
    transition(db, "web", "connected", "error", now - timedelta(hours=2))
    # a window over the last 3 hours and still open for one more: the outage is inside it
    db.execute(
        "INSERT INTO maintenance_windows (source_ids, starts_at, ends_at, reason)"
        " VALUES ('{web}', %s, %s, 'upgrade')",
        (now - timedelta(hours=3), now + timedelta(hours=1)),
    )
    w = client.get("/api/v1/sources/web/uptime").get_json()["windows"]["24h"]
    assert w["maintenance_s"] == pytest.approx(3 * 3600, abs=1)
    assert w["down_s"] == 0 and w["up_s"] == pytest.approx(7 * 3600, abs=1)
    assert w["uptime"] == 100.0
    html = client.get("/status").get_data(as_text=True)
    assert 'data-source-id="web" data-status="error"' in html
    row = html[html.index('data-source-id="web"') :]
    assert 'data-maintenance="true"' in row.split(">", 1)[0]
    assert 'data-overall="maintenance"' in html
    assert "Maintenance in progress: 1 of 2 sources" in html
    assert 'data-maintenance="true"' in client.get("/status/web").get_data(as_text=True)


def test_detail_page_shows_the_config_as_it_is(
    client: FlaskClient, db: psycopg.Connection[Any]
) -> None:
    add_source(db, "web", "ai", config={"url": "http://127.0.0.1:9/?a=1&b=<2>", "password": "x"})
    html = client.get("/status/web").get_data(as_text=True)
    pre = html[html.index("<pre>") : html.index("</pre>")]
    # escaped once for HTML (a browser shows & < >), not as JSON's \u0026
    assert "?a=1&amp;b=&lt;2&gt;" in pre and "\\u00" not in pre
    assert "\n  &#34;url&#34;: " in pre  # indented, one key a line
    assert '<span class="kind">AI · http</span>' in html


def test_type_headings_are_spelled_for_people(
    client: FlaskClient, db: psycopg.Connection[Any]
) -> None:
    for sid, kind in (("a", "ai"), ("b", "database"), ("c", "message_queue")):
        add_source(db, sid, kind)
    html = client.get("/status").get_data(as_text=True)
    assert re.findall(r"<h2>([^<]+)</h2>", html) == ["AI", "Database", "Message queue"]
    assert html.count("<h1") == 1


def test_static_files_are_gzipped_with_their_own_etag(client: FlaskClient) -> None:
    html = client.get("/status").get_data(as_text=True)
    icon = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html)
    assert icon and client.get(icon[1]).mimetype == "image/svg+xml"
    for url in re.findall(r'(?:href|src)="(/static/status\.[^"]+)"', html):
        plain = client.get(url)
        zipped = client.get(url, headers={"Accept-Encoding": "gzip, br"})
        assert "Content-Encoding" not in plain.headers
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert zipped.headers["Vary"] == plain.headers["Vary"] == "Accept-Encoding"
        assert gzip.decompress(zipped.get_data()) == plain.get_data()
        assert len(zipped.get_data()) < len(plain.get_data()) / 2
        assert zipped.headers["ETag"] != plain.headers["ETag"]
        again = client.get(
            url, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]}
        )
        assert again.status_code == 304 and again.get_data() == b""
        # the other encoding's tag does not match this one
        other = client.get(url, headers={"If-None-Match": zipped.headers["ETag"]})
        assert other.status_code == 200
    assert client.get("/static/nope.css").status_code == 404
