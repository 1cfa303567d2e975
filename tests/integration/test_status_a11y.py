"""The status page's accessibility in a real browser: axe-core (from npm) injected into
/status and a detail page in light and dark, tab stops of a 5,000-source page counted and
walked with the Tab key, the day bar's arrow keys, and the detail page at 360 px."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd.core import rollups
from tests.fix_browser import BROWSER_TESTS, Browser
from tests.fix_db import add_many
from tests.fix_procs import Gunicorn

pytestmark = BROWSER_TESTS

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
AXE_RUN = """
var done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: arguments[0]}}).then(function (r) {
  done({
    passes: r.passes.length,
    incomplete: r.incomplete.map(function (v) {
      return v.id + " (" + v.nodes.length + ": " + v.nodes.slice(0, 4).map(function (n) {
        return n.target.join(" ") + " " + (n.any[0] ? n.any[0].message : "");
      }).join("; ") + ")";
    }),
    violations: r.violations.map(function (v) {
      return {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,
              where: v.nodes.slice(0, 3).map(function (n) { return n.target.join(" "); })};
    })
  });
}, function (e) { done({error: String(e)}); });
"""
# what a keyboard reaches with Tab: focusable, shown, not inside a closed <details> (but
# its <summary>)
TAB_STOPS = """
var els = document.querySelectorAll("a[href], button, input, select, textarea, summary, [tabindex]");
return Array.prototype.filter.call(els, function (e) {
  if (e.tabIndex < 0 || e.disabled || !e.getClientRects().length) return false;
  var closed = e.closest("details:not([open])");
  return !closed || (e.tagName === "SUMMARY" && e.parentNode === closed);
}).length;
"""


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Gunicorn]:
    g = Gunicorn(db_url, tmp_path / "gunicorn.log", workers=1)
    try:
        yield g
    finally:
        g.stop()


def detail_source(db: psycopg.Connection[Any]) -> None:
    """A source with a month of transitions, confirming results and an hour of latency,
    so every part of its page is drawn."""
    now = datetime.now(UTC)
    db.execute(
        "UPDATE data_sources SET name = 'Orders & <billing> API', type = 'ai',"
        " test_error_message = 'HTTP 503 from upstream', test_status = 'failed',"
        " connection_status = 'error', status_changed_at = %s, config = %s WHERE id = 's1'",
        (now - timedelta(hours=2), '{"url": "http://127.0.0.1:9/?a=1&b=<2>", "password": "x"}'),
    )
    for days_ago, frm, to in ((20, "connected", "error"), (19.5, "error", "connected")):
        db.execute(
            "INSERT INTO status_history (source_id, from_status, to_status, at, error_message,"
            " results) VALUES ('s1', %s, %s, %s, 'HTTP 503', %s)",
            (frm, to, now - timedelta(days=days_ago), '[{"at": "x", "status": "failed"}]'),
        )
    db.execute(
        "INSERT INTO status_history (source_id, from_status, to_status, at)"
        " VALUES ('s1', 'connected', 'error', %s)",
        (now - timedelta(hours=2),),
    )
    hist = [0] * rollups.SLOTS
    hist[rollups.slot(20)] = 5
    for minute in range(3, 60):
        db.execute(
            "INSERT INTO latency_rollups (source_id, bucket, count, failures, max_ms, hist)"
            " VALUES ('s1', date_bin('1 minute', now() - make_interval(mins => %s), 'epoch'),"
            " 5, %s, 40, %s)",
            (minute, int(minute % 13 == 0), hist),
        )


def axe(driver: Any, source: str, name: str) -> dict[str, Any]:
    driver.execute_script(source)
    driver.set_script_timeout(120)
    got: dict[str, Any] = driver.execute_async_script(AXE_RUN, AXE_TAGS)
    assert "error" not in got, got
    sys.stderr.write(
        f"\naxe-core on {name}: {got['passes']} rules passed,"
        f" {len(got['violations'])} violated {got['violations']},"
        f" incomplete (needs a person) {got['incomplete']}\n"
    )
    return got


def test_axe_finds_nothing_on_status_and_detail_in_light_and_dark(
    db: psycopg.Connection[Any],
    api: Gunicorn,
    browser: Browser,
    npm_modules: Callable[[str], Path],
) -> None:
    add_many(db, 40, ("service", "database", "ai"), down_every=7)
    detail_source(db)
    source = (npm_modules("axe-core@4") / "axe-core" / "axe.min.js").read_text()
    driver = browser()
    for scheme in ("light", "dark"):
        driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )
        for path, name in (("/status", "/status"), ("/status/s1", "a detail page")):
            driver.get(api.base + path)
            got = axe(driver, source, f"{name} ({scheme})")
            assert got["violations"] == [], (path, scheme)
    # the configuration block shows the characters as they are
    assert "?a=1&b=<2>" in driver.find_element("css selector", "pre").text


def test_a_long_page_is_passable_by_keyboard(
    db: psycopg.Connection[Any], api: Gunicorn, browser: Browser
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    add_many(db, 5000, down_every=49)
    driver = browser()
    driver.get(api.base + "/status")
    stops = driver.execute_script(TAB_STOPS)
    days = driver.execute_script("return document.querySelectorAll('.bar rect').length")
    sys.stderr.write(f"\n/status, 5,000 sources: {stops} tab stops, {days} day cells\n")
    assert stops < 500  # 450,000 before: every day of every source
    # the Tab key really gets from the top of the page to the footer
    footer = "return document.activeElement.matches('footer a')"
    presses = 0
    while not driver.execute_script(footer):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        presses += 1
        assert presses <= stops + 5, "the footer is out of the Tab key's reach"
    sys.stderr.write(f"Tab pressed {presses} times from the top to the footer\n")

    # inside a bar: the arrow keys move through the days, Tab leaves the bar
    bar = driver.find_element("css selector", ".bar")
    driver.execute_script("arguments[0].focus()", bar)
    today = datetime.now(UTC).date()
    active = driver.switch_to.active_element
    ActionChains(driver).send_keys(Keys.ARROW_LEFT).perform()
    active = driver.switch_to.active_element
    assert active.tag_name == "rect"
    assert active.get_attribute("aria-label").startswith(f"{today.isoformat()}: ")
    ActionChains(driver).send_keys(Keys.ARROW_LEFT).perform()
    label = driver.switch_to.active_element.get_attribute("aria-label")
    assert label.startswith((today - timedelta(days=1)).isoformat())
    assert driver.find_element("css selector", ".daytip").text == label  # seen, not only heard
    held = driver.execute_script(
        "return Array.from(arguments[0].querySelectorAll('[tabindex]')).concat([arguments[0]])"
        ".filter(function (e) { return e.getAttribute('tabindex') === '0'; }).length",
        bar,
    )
    assert held == 1  # the bar keeps one tab stop, wherever it is inside
    ActionChains(driver).send_keys(Keys.HOME).perform()
    first = driver.switch_to.active_element.get_attribute("aria-label")
    assert first.startswith((today - timedelta(days=89)).isoformat())
    ActionChains(driver).send_keys(Keys.TAB).perform()
    assert not driver.execute_script("return arguments[0].contains(document.activeElement)", bar), (
        "Tab stayed inside the bar"
    )
    ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    assert driver.switch_to.active_element.get_attribute("aria-label") == first
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    assert driver.switch_to.active_element.get_attribute("class") == "bar"


def test_without_javascript_a_bar_is_one_named_stop(
    db: psycopg.Connection[Any], api: Gunicorn, browser: Browser
) -> None:
    add_many(db, 10, down_every=3)
    driver = browser(javascript=False)
    driver.get(api.base + "/status")
    bars = driver.find_elements("css selector", ".bar")
    assert len(bars) == 10
    for bar in bars:
        assert bar.get_attribute("tabindex") == "0"
        assert bar.get_attribute("aria-label").startswith("Uptime per day, last 90 days: ")
    # no day is a stop of its own: the bar is
    in_bars = driver.execute_script(
        "return Array.from(document.querySelectorAll('.bar, .bar *'))"
        ".filter(function (e) { return e.tabIndex >= 0; }).length"
    )
    assert in_bars == len(bars)


def test_detail_page_fits_360_px(
    db: psycopg.Connection[Any], api: Gunicorn, browser: Browser
) -> None:
    add_many(db, 3)
    detail_source(db)
    driver = browser(width=360, height=800)
    for path in ("/status/s1", "/status/s1?window=7d", "/status"):
        driver.get(api.base + path)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways at 360 px by {overflow} px"
