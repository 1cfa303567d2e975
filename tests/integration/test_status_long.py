"""A long status page stays bounded: 5,000 sources through Flask's test client against a
real PostgreSQL (the same page in a browser, its tab stops counted, is in
test_status_browser.py)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from statusapi.page import views
from tests.fix_api import readonly_app
from tests.fix_db import add_many

N = 5000
KINDS = ("service", "database", "ai", "queue", "storage")
DOWN_EVERY = 49  # so the failing are spread over the kinds (fix_db.add_many: s<g> is KINDS[g % 5])
FAILING = {f"s{g}" for g in range(DOWN_EVERY, N + 1, DOWN_EVERY)}


def failing_of(kind: str) -> set[str]:
    return {i for i in FAILING if KINDS[int(i[1:]) % len(KINDS)] == kind}


@pytest.fixture
def client(db_url: str, db: psycopg.Connection[Any]) -> Iterator[FlaskClient]:
    add_many(db, N, KINDS, DOWN_EVERY)
    db.execute(
        "UPDATE data_sources SET pending_status = 'error', pending_count = 1 WHERE id = 's6'"
    )
    with readonly_app(db_url) as app:
        yield app.test_client()


def rows_of(html: str, group: str) -> list[str]:
    part = html[html.index(f'data-group="{group}"') :]
    part = part[: part.index("</details>")]
    return re.findall(r'<li class="row[^"]*" data-source-id="([^"]+)"', part)


def test_five_thousand_sources_are_one_bounded_page(client: FlaskClient) -> None:
    started = time.perf_counter()
    resp = client.get("/status")
    took = time.perf_counter() - started
    html = resp.get_data(as_text=True)
    sys.stderr.write(f"\n/status, {N} sources: {len(html) / 1e3:.0f} kB in {took:.2f} s\n")
    assert resp.status_code == 200
    assert len(html) < 1_500_000  # 43.6 MB before: a row and 90 day tooltips per source
    shown = re.findall(r'<li class="row[^"]*" data-source-id="', html)
    assert len(shown) <= views.OVERVIEW_ROWS
    # the banner and the counts are still of every source
    assert f"Partial outage: {len(FAILING)} of 5000 sources not connected" in html
    assert f'<span data-count="error">{len(FAILING)}</span>' in html
    assert 'data-partial="true"' in html
    # every group shows its failing and pending sources first, then links to the rest
    for kind in KINDS:
        ids = rows_of(html, kind)
        assert len(ids) == views.OVERVIEW_ROWS // len(KINDS)
        down = failing_of(kind)
        assert set(ids[: len(down)]) == down and len(down) >= 20
        assert f'href="/status?group={kind}">All 1,000 ' in html
    # pending: right after the failing ones
    assert rows_of(html, "database")[len(failing_of("database"))] == "s6"
    assert html.count("<h1") == 1 and "<h2>AI</h2>" in html


def test_a_group_is_paged_with_the_failing_first(client: FlaskClient) -> None:
    first = client.get("/status?group=ai").get_data(as_text=True)
    ids = rows_of(first, "ai")
    down = failing_of("ai")
    assert len(ids) == views.PAGE_ROWS and set(ids[: len(down)]) == down
    assert "Page 1 of 10" in first and 'href="/status?group=ai&amp;page=2" rel="next"' in first
    assert 'rel="prev"' not in first and "<title>AI · Status · healthd</title>" in first
    last = client.get("/status?group=ai&page=10").get_data(as_text=True)
    assert len(rows_of(last, "ai")) == views.PAGE_ROWS and 'rel="next"' not in last
    every = set()
    for page in range(1, 11):
        every |= set(rows_of(client.get(f"/status?group=ai&page={page}").get_data(True), "ai"))
    assert len(every) == 1000  # each source on exactly one page


@pytest.mark.parametrize(
    ("query", "status", "needle"),
    [
        ("group=nope", 404, "no source of type 'nope'"),
        ("group=ai&page=11", 404, "has 10 page(s)"),
        ("group=ai&page=0", 400, "page: must be between 1"),
        ("group=ai&page=x", 400, "page: must be an integer"),
        ("page=2", 400, "page: pages are per group"),
    ],
)
def test_bad_group_or_page_is_a_clear_answer(
    client: FlaskClient, query: str, status: int, needle: str
) -> None:
    resp = client.get(f"/status?{query}")
    assert resp.status_code == status and needle in resp.get_json()["error"]["message"]
