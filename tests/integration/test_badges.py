"""Badges as README authors and shields.io use them: the SVG with ?label= and ?style=,
the shields "endpoint" JSON (checked by shields' own badge-maker from npm), and errors
that are badges too."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from statusapi.page import badge_svg
from tests import fix_db
from tests.fix_api import readonly_app
from tests.fix_npm import node

# the keys shields' endpoint schema accepts (it refuses a document with any other)
SHIELDS_KEYS = {
    "schemaVersion",
    "label",
    "message",
    "color",
    "labelColor",
    "isError",
    "namedLogo",
    "logoSvg",
    "logoColor",
    "logoWidth",
    "style",
    "cacheSeconds",
}
LONG = "Payments gateway for the European storefront and its partners"


@pytest.fixture
def client(db_url: str, db: psycopg.Connection[Any]) -> Iterator[FlaskClient]:
    now = datetime.now(UTC)
    for sid, name, word in (("web", "Web shop", "error"), ("pay", LONG, "disconnected")):
        fix_db.add_source(
            db,
            sid,
            "http",
            {"url": "http://127.0.0.1:9/"},
            name=name,
            connection_status=word,
            created_at=now - timedelta(days=2),
        )
        db.execute(
            "INSERT INTO status_history (source_id, from_status, to_status, at)"
            " VALUES (%s, 'unknown', %s, %s)",
            (sid, word, now - timedelta(days=1)),
        )
    with readonly_app(db_url) as app:
        yield app.test_client()


def texts(svg: str) -> list[str]:
    return re.findall(r'<text x="[^"]+" y="14">([^<]*)</text>', svg)


def test_status_badge_svg(client: FlaskClient) -> None:
    resp = client.get("/badge/web.svg")
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
    svg = resp.get_data(as_text=True)
    assert texts(svg) == ["Web shop", "error"]
    assert f'fill="{badge_svg.STATUS_COLOURS["error"]}"' in svg and 'rx="3"' in svg
    assert "max-age=60" in resp.headers["Cache-Control"]
    again = client.get("/badge/web.svg", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304
    # ?label= replaces the name; an empty one leaves the left part out, as on shields
    assert texts(client.get("/badge/web.svg?label=shop").get_data(as_text=True)) == [
        "shop",
        "error",
    ]
    assert texts(client.get("/badge/web.svg?label=").get_data(as_text=True)) == ["error"]
    square = client.get("/badge/web.svg?style=flat-square").get_data(as_text=True)
    assert 'rx="3"' not in square and "linearGradient" not in square
    assert 'shape-rendering="crispEdges"' in square


def test_long_names_are_cut_at_a_word(client: FlaskClient) -> None:
    (label, _) = texts(client.get("/badge/pay.svg").get_data(as_text=True))
    assert label == "Payments gateway for the European…"
    assert len(label) <= badge_svg.LABEL_MAX
    doc = client.get("/badge/pay.json").get_json()
    assert doc["label"] == label and doc["message"] == "disconnected"


def test_uptime_badge(client: FlaskClient) -> None:
    svg = client.get("/badge/web/uptime-24h.svg").get_data(as_text=True)
    assert texts(svg) == ["uptime 24h", "0%"]
    doc = client.get("/badge/web/uptime-7d.json?label=SLA").get_json()
    assert (doc["label"], doc["message"]) == ("SLA", "0%")


def test_errors_are_grey_badges_not_json(client: FlaskClient) -> None:
    grey = f'fill="{badge_svg.UNKNOWN_GREY}"'
    for url, status, words in (
        ("/badge/nope.svg", 404, ["status", "not found"]),
        ("/badge/nope/uptime-24h.svg", 404, ["uptime 24h", "not found"]),
        ("/badge/web/uptime-1y.svg", 404, ["uptime 1y", "not 24h|7d|30d|90d"]),
        ("/badge/web.svg?style=plastic", 400, ["style", "not flat or flat-square"]),
        ("/badge/web.svg?label=a&label=b", 400, ["label", "given twice"]),
    ):
        resp = client.get(url)
        assert (resp.status_code, resp.mimetype) == (status, "image/svg+xml"), url
        svg = resp.get_data(as_text=True)
        assert texts(svg) == words and grey in svg, url
    doc = client.get("/badge/nope.json").get_json()
    assert doc == {
        "schemaVersion": 1,
        "label": "status",
        "message": "not found",
        "color": badge_svg.UNKNOWN_GREY,
        "labelColor": badge_svg.LABEL_GREY,
        "isError": True,
    }
    assert client.get("/badge/nope.json").status_code == 404


def test_shields_endpoint_json_renders_with_badge_maker(
    client: FlaskClient, npm_modules: Callable[[str], Path]
) -> None:
    """What shields does with the endpoint JSON: take the keys its schema knows and hand
    them to badge-maker, shields' own renderer (from npm). It throws on a bad document."""
    resp = client.get("/badge/web.json?style=flat-square")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    doc = resp.get_json()
    assert set(doc) <= SHIELDS_KEYS
    assert doc == {
        "schemaVersion": 1,
        "label": "Web shop",
        "message": "error",
        "color": badge_svg.STATUS_COLOURS["error"],
        "labelColor": badge_svg.LABEL_GREY,
        "style": "flat-square",
    }
    modules = npm_modules("badge-maker@4")
    rendered = node(
        modules,
        "const {makeBadge} = require('badge-maker');"
        "const d = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(makeBadge({label: d.label, message: d.message, color: d.color,"
        " labelColor: d.labelColor, style: d.style}));",
        json.dumps(doc),
    )
    assert 'aria-label="Web shop: error"' in rendered
    # badge-maker took our colours as they are (an unknown one falls back to its grey)
    assert f'fill="{badge_svg.STATUS_COLOURS["error"]}"' in rendered
    assert f'fill="{badge_svg.LABEL_GREY}"' in rendered


def test_a_control_character_leaves_the_svg_well_formed(
    client: FlaskClient, db: psycopg.Connection[Any]
) -> None:
    from xml.etree import ElementTree

    # a name written with SQL, past the CLI's refusal (healthd/config/sources.py)
    db.execute("UPDATE data_sources SET name = 'Web\x1b[31m\x07shop' WHERE id = 'web'")
    for url in ("/badge/web.svg", "/badge/pay.svg?label=a%1Bb%07", "/badge/web.svg?label=%0Bx"):
        svg = client.get(url).get_data(as_text=True)
        ElementTree.fromstring(svg)  # raises on a character XML does not allow
    assert (
        texts(client.get("/badge/web.svg").get_data(as_text=True))[0] == "Web\ufffd[31m\ufffdshop"
    )
