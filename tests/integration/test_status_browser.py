"""The status page in a real browser: Debian's chromium driven through
/usr/bin/chromedriver by selenium, against a real gunicorn and a real `healthd run`.

Set HEALTHD_SCREENSHOTS=DIR to keep screenshots of the pages (the README's come from here).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import psycopg

from healthd.core import rollups
from tests.fix_browser import BROWSER_TESTS, Browser, screenshot
from tests.fix_db import add_http
from tests.fix_procs import DaemonProcess, Gunicorn, wait_for
from tests.fix_servers import Target

pytestmark = BROWSER_TESTS


def history(db: psycopg.Connection[Any]) -> None:
    """Months of made-up history before the daemon starts, so the day bars have days: each
    source was created weeks ago, confirmed connected, and had a few short outages."""
    outages = {
        "api": [(75, 0.5, "error"), (41, 2.0, "disconnected"), (9, 0.2, "error")],
        "pg": [(60, 0.1, "disconnected"), (23, 6.0, "disconnected")],
        "web": [(33, 0.3, "error"), (4, 1.5, "error"), (2, 0.05, "disconnected")],
    }
    for sid, outs in outages.items():
        born = 95 if sid != "web" else 50
        db.execute(
            "UPDATE data_sources SET created_at = now() - make_interval(days => %s),"
            " connection_status = 'connected', status_changed_at = now() - interval '1 day'"
            " WHERE id = %s",
            (born, sid),
        )
        rows = [(born - 0.01, "unknown", "connected")]
        for days_ago, hours, to in outs:
            rows.append((days_ago, "connected", to))
            rows.append((days_ago - hours / 24, to, "connected"))
        for days_ago, frm, to in rows:
            db.execute(
                "INSERT INTO status_history (source_id, from_status, to_status, at)"
                " VALUES (%s, %s, %s, now() - make_interval(secs => %s))",
                (sid, frm, to, days_ago * 86400),
            )


def latency_history(db: psycopg.Connection[Any], sid: str) -> None:
    """An hour of made-up latency rollups, ending three minutes ago (the daemon's own
    come after), so the chart has a line to draw."""
    hist = [0] * rollups.SLOTS
    for minute in range(3, 60):
        fast, slow = 6 + minute % 5, 1 + (minute % 7 == 0)
        row = list(hist)
        row[rollups.slot(8 + minute % 9)] += fast
        row[rollups.slot(30 + 4 * (minute % 11))] += slow
        db.execute(
            "INSERT INTO latency_rollups (source_id, bucket, count, failures, max_ms, hist)"
            " VALUES (%s, date_bin('1 minute', now() - make_interval(mins => %s), 'epoch'),"
            " %s, %s, %s, %s)",
            (sid, minute, fast + slow + (minute == 17), int(minute == 17), 70.0, row),
        )


def statuses(driver: Any) -> dict[str, str]:
    got: dict[str, str] = driver.execute_script(
        "var o = {}; document.querySelectorAll('.rows [data-source-id]').forEach(function (e)"
        " { o[e.getAttribute('data-source-id')] = e.getAttribute('data-status'); }); return o;"
    )
    return got


def test_every_source_rendered_without_javascript(
    db_url: str, db: psycopg.Connection[Any], tmp_path: Path, browser: Browser
) -> None:
    kinds = ("service", "database", "ai")
    words = ("connected", "disconnected", "error", "unknown")
    for i in range(40):
        db.execute(
            "INSERT INTO data_sources (id, name, type, plugin, connection_status)"
            " VALUES (%s, %s, %s, 'tcp', %s)",
            (f"src-{i:02}", f"Source {i:02}", kinds[i % 3], words[i % 4]),
        )
    api = Gunicorn(db_url, tmp_path / "gunicorn.log", workers=1)
    try:
        driver = browser(javascript=False)
        driver.get(f"{api.base}/status")
        got = statuses(driver)
        assert got == {f"src-{i:02}": words[i % 4] for i in range(40)}
        banner = driver.find_element("css selector", "[data-overall]")
        assert banner.get_attribute("data-overall") == "outage"  # 20 of 30 known are down
        assert "Major outage: 20 of 40 sources not connected" in banner.text
        # the page's script did not run (it would say "live" or "reconnecting…" here)
        assert driver.find_element("css selector", "[data-mode]").text == "updates when reloaded"
    finally:
        api.stop()


def _first_status(db: psycopg.Connection[Any], sid: str, to: str, after_id: int) -> Any:
    return db.execute(
        "SELECT id, extract(epoch FROM at)::float8 FROM status_history"
        " WHERE source_id = %s AND to_status = %s AND id > %s ORDER BY id LIMIT 1",
        (sid, to, after_id),
    ).fetchone()


def test_a_real_transition_reaches_the_open_page(
    db_url: str, db: psycopg.Connection[Any], tmp_path: Path, browser: Browser
) -> None:
    web, steady = Target(), Target()
    add_http(db, "web", web.url, name="Web shop", type="service")
    add_http(db, "api", steady.url, name="Public API", type="service")
    add_http(db, "pg", steady.url, name="Orders database", type="database")
    history(db)
    latency_history(db, "web")
    daemon = DaemonProcess(
        db_url,
        tmp_path / "daemon.log",
        HEALTHD_INTERVAL="1",
        HEALTHD_RISE="2",
        HEALTHD_FALL="2",
        HEALTHD_RETRY_INTERVAL="0.3",
    )
    api = Gunicorn(db_url, tmp_path / "gunicorn.log", workers=1)
    try:
        wait_for(
            lambda: (
                db.execute(
                    "SELECT count(*) FROM data_sources WHERE connection_status = 'connected'"
                ).fetchone()[0]  # type: ignore[index]
                == 3
            ),
            timeout=30,
            what="all three sources connected",
        )
        driver = browser()
        driver.get(f"{api.base}/status")
        assert statuses(driver) == {"web": "connected", "api": "connected", "pg": "connected"}
        banner = driver.find_element("css selector", "#banner")
        assert banner.get_attribute("data-overall") == "operational"
        wait_for(
            lambda: driver.find_element("css selector", "[data-mode]").text == "live",
            timeout=10,
            what="the page's stream to open",
        )
        driver.execute_script(
            "window.seen = {}; new MutationObserver(function (ms) { ms.forEach(function (m) {"
            " var e = m.target; window.seen[e.getAttribute('data-source-id') + ':'"
            " + e.getAttribute('data-status')] = Date.now(); }); }).observe(document.body,"
            " {attributes: true, subtree: true, attributeFilter: ['data-status']});"
        )
        head = int(driver.find_element("css selector", "body").get_attribute("data-after"))

        web.set("fail")
        seen_ms = wait_for(
            lambda: driver.execute_script("return window.seen['web:error']"),
            timeout=30,
            what="the page to show web as error",
        )
        hid, at = wait_for(lambda: _first_status(db, "web", "error", head), what="history row")
        delay = seen_ms / 1000 - at
        sys.stderr.write(
            f"\nP14: transition (history id {hid}) shown {delay * 1000:.0f} ms after\n"
        )
        assert delay < 1.0, f"the page showed the transition {delay:.3f} s after it was written"
        assert banner.get_attribute("data-overall") == "degraded"
        assert "Partial outage: 1 of 3 sources not connected" in banner.text
        assert driver.find_element("css selector", '[data-count="error"]').text == "1"
        live = driver.find_element("css selector", "#live")
        assert live.get_attribute("aria-live") == "polite"
        assert "Web shop is now error" in live.get_attribute("textContent")
        first_recent = driver.find_element("css selector", "#recent li")
        assert "Web shop" in first_recent.text and "error" in first_recent.text
        screenshot(driver, "status")

        web.set("ok")
        wait_for(
            lambda: banner.get_attribute("data-overall") == "operational",
            timeout=30,
            what="the banner to follow web back to connected",
        )
        assert statuses(driver)["web"] == "connected"

        driver.get(f"{api.base}/status/web")
        chart = driver.find_element("css selector", 'svg[data-chart="latency"]')
        assert chart.is_displayed()
        wait_for(
            lambda: db.execute(
                "SELECT count(*) FROM latency_rollups WHERE source_id='web'"
            ).fetchone()[0],  # type: ignore[index]
            # the daemon writes a minute's rollup once the minute has closed
            timeout=90,
            what="a latency rollup for web",
        )
        driver.refresh()
        chart = driver.find_element("css selector", 'svg[data-chart="latency"]')
        assert chart.find_elements("css selector", "polyline.p50")
        assert len(driver.find_elements("css selector", ".bar rect")) == 90
        screenshot(driver, "detail")

        driver.set_window_size(360, 800)
        driver.get(f"{api.base}/status")
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, "the page scrolls sideways at 360 px"
        shown = driver.execute_script(
            "return Array.from(document.querySelectorAll('[data-source-id=\"web\"] .bar rect'))"
            ".filter(function (e) { return e.getClientRects().length > 0; }).length"
        )
        assert shown == 30
        screenshot(driver, "status-360")
    finally:
        api.stop()
        daemon.stop()
        web.close()
        steady.close()


def test_the_page_resumes_after_the_api_was_away(
    db_url: str, db: psycopg.Connection[Any], tmp_path: Path, browser: Browser
) -> None:
    """A network blip: the API goes away with the page open, a transition is committed
    meanwhile, the API comes back on the same address; the page catches up by id."""
    from unittest import mock

    from healthd.local.embedded import free_port

    db.execute(
        "INSERT INTO data_sources (id, name, type, plugin, connection_status)"
        " VALUES ('web', 'Web shop', 'service', 'http', 'connected')"
    )
    port = free_port()
    with mock.patch("healthd.local.embedded.free_port", return_value=port):
        api = Gunicorn(db_url, tmp_path / "gunicorn-1.log", workers=1)
    driver = browser()
    try:
        driver.get(f"{api.base}/status")
        mode = driver.find_element("css selector", "[data-mode]")
        wait_for(lambda: mode.text == "live", timeout=10, what="the stream to open")
        api.stop()
        wait_for(lambda: mode.text != "live", timeout=20, what="the page to notice")
        db.execute(
            "WITH h AS (INSERT INTO status_history (source_id, from_status, to_status)"
            " VALUES ('web', 'connected', 'error') RETURNING id)"
            " UPDATE data_sources SET connection_status = 'error' WHERE id = 'web'"
        )
        with mock.patch("healthd.local.embedded.free_port", return_value=port):
            api = Gunicorn(db_url, tmp_path / "gunicorn-2.log", workers=1)
        wait_for(
            lambda: statuses(driver).get("web") == "error",
            timeout=45,
            what="the page to catch up with the transition made while the API was away",
        )
        banner = driver.find_element("css selector", "#banner")
        assert banner.get_attribute("data-overall") == "outage"
        wait_for(lambda: mode.text == "live", timeout=45, what="the stream to be live again")
    finally:
        api.stop()
