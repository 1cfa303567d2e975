"""The daily uptime rollup (migrations/0015_uptime_days.sql, healthd/store/uptimedays.py)
and the figures the API builds from it (statusapi.data.uptime.Plan), held against the
computation over every transition (statusapi.data.uptime.Timeline) on the same history:
at the day's edges (a state that began before the window, a transition on midnight, the
current day still open, the first day of each window), with maintenance set apart, for
a source created inside the range, for days the rollup does not have, and after a
transition written late for a day already rolled up."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from flask import Flask

from healthd.store import uptimedays
from statusapi.data import figures, queries
from statusapi.data.uptime import DAY, WINDOWS, Timeline
from tests.fix_api import readonly_app

STATUSES = ("connected", "error", "disconnected", "unknown")


@pytest.fixture
def api(db_url: str) -> Iterator[Flask]:
    with readonly_app(db_url) as app:
        yield app


def _midnight(db: psycopg.Connection[Any]) -> datetime:
    row = db.execute("SELECT date_trunc('day', now() AT TIME ZONE 'UTC')").fetchone()
    assert row is not None
    return row[0].replace(tzinfo=UTC)  # type: ignore[no-any-return]


def _history(db: psycopg.Connection[Any], sid: str, created: datetime, at: list[datetime]) -> None:
    rnd = random.Random(sid)
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, enabled, created_at)"
        " VALUES (%s, %s, 'tcp', false, %s)",
        (sid, sid, created),
    )
    prev = "unknown"
    for t in sorted(at):
        to = rnd.choice([s for s in STATUSES if s != prev])
        db.execute(
            "INSERT INTO status_history (source_id, from_status, to_status, at)"
            " VALUES (%s, %s, %s, %s)",
            (sid, prev, to, t),
        )
        prev = to


def _seed(db: psycopg.Connection[Any]) -> datetime:
    today = _midnight(db)
    now = datetime.now(UTC)
    rnd = random.Random(7)
    # "old": created long before the range; its state at the window's start began 95 days
    # ago; transitions on midnight, a second before and after it, and at random; today's
    # too, so the open day has some
    edges = [
        today - timedelta(days=d) + timedelta(seconds=s)
        for d in (1, 7, 30, 89, 90, 91)
        for s in (-1, 0, 1)
    ]
    random_at = [
        today - timedelta(days=92) + timedelta(seconds=rnd.uniform(0, 92 * DAY))
        for _ in range(1500)
    ]
    open_day = [today + (now - today) * f for f in (0.1, 0.5, 0.9)]
    _history(
        db,
        "old",
        today - timedelta(days=200),
        [today - timedelta(days=95), *edges, *random_at, *open_day],
    )
    # "young": created 10.5 days ago, with a transition of an earlier source of that id
    young = today - timedelta(days=10, hours=12)
    _history(
        db,
        "young",
        young,
        [
            young - timedelta(days=3),
            *(young + timedelta(seconds=rnd.uniform(0, 10 * DAY)) for _ in range(200)),
        ],
    )
    # "quiet": no transition at all (unknown since its creation, 40 days ago)
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, enabled, created_at)"
        " VALUES ('quiet', 'quiet', 'tcp', false, %s)",
        (today - timedelta(days=40, hours=3),),
    )
    # maintenance: a one-off window across a midnight, one across the 7d window's start,
    # one still open; a daily one for "old" at 23:30 for an hour (across every midnight)
    db.execute(
        "INSERT INTO maintenance_windows (source_ids, starts_at, ends_at) VALUES"
        " (NULL, %s, %s), ('{old,young}', %s, %s), ('{old}', %s, %s)",
        (
            today - timedelta(days=20, hours=2),
            today - timedelta(days=19, hours=-3),
            now - timedelta(days=7, hours=1),
            now - timedelta(days=6, hours=23),
            today,
            now + timedelta(hours=1),
        ),
    )
    db.execute(
        "INSERT INTO maintenance_windows (source_ids, starts_at, every_time, duration)"
        " VALUES ('{old}', %s, '23:30', '1 hour')",
        (today - timedelta(days=60),),
    )
    return today


def _roll(db_url: str) -> int:
    roller = uptimedays.Roller()
    total = 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        while (n := roller.batch(conn, batch=50)) is not None and n:
            total += n
    return total


def _reference(sid: str, now: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The figures over every transition, as of ``now``."""
    found = queries.uptime_rows(sid, 92)
    assert found is not None
    created, _, times, statuses, _ = found
    since = now - WINDOWS["90d"] - DAY
    spans = queries.maintenance_spans(sid, since, now + DAY)
    tl = Timeline(zip(times, statuses, strict=True), created, since, spans)
    return tl.windows(now), tl.daily(now)


def _compare(app: Flask, ids: list[str]) -> None:
    with app.app_context():
        now, got = figures.plans(ids)
        assert set(got) == set(ids)
        for sid in ids:
            windows, daily = got[sid]
            ref_windows, ref_daily = _reference(sid, now)
            for name, fig in windows.items():
                ref = ref_windows[name]
                for key in ("up_s", "down_s", "unknown_s", "maintenance_s"):
                    assert fig[key] == pytest.approx(ref[key], abs=0.01), (sid, name, key)
                if ref["uptime"] is None:
                    assert fig["uptime"] is None, (sid, name)
                else:
                    assert fig["uptime"] == pytest.approx(ref["uptime"], abs=1e-3), (sid, name)
            assert [d["date"] for d in daily] == [d["date"] for d in ref_daily]
            for d, ref in zip(daily, ref_daily, strict=True):
                assert d["down_s"] == pytest.approx(ref["down_s"], abs=0.01), (sid, d["date"])
                if ref["uptime"] is None:
                    assert d["uptime"] is None, (sid, d["date"])
                else:
                    assert d["uptime"] == pytest.approx(ref["uptime"], abs=1e-3), (sid, d["date"])


def test_the_rollup_gives_the_figures_every_transition_gives(
    db_url: str, db: psycopg.Connection[Any], api: Flask
) -> None:
    today = _seed(db)
    ids = ["old", "young", "quiet"]
    _compare(api, ids)  # nothing rolled up yet: every day from the transitions
    assert _roll(db_url) > 100
    rolled = db.execute("SELECT count(*) FROM uptime_days WHERE source_id = 'old'").fetchone()
    assert rolled is not None and rolled[0] >= uptimedays.DAYS_KEPT - 1
    _compare(api, ids)
    # a day the rollup lacks is read from its transitions
    db.execute("DELETE FROM uptime_days WHERE day = %s", ((today - timedelta(days=40)).date(),))
    _compare(api, ids)
    # a transition written late (a replayed spool) for a day rolled up: that day and the
    # ones after it are rolled again (the state each starts in has changed)
    db.execute(
        "INSERT INTO status_history (source_id, from_status, to_status, at)"
        " VALUES ('old', 'connected', 'error', %s)",
        (today - timedelta(days=13, hours=-5),),
    )
    before = db.execute(
        "SELECT up_s, down_s FROM uptime_days WHERE source_id = 'old' AND day = %s",
        ((today - timedelta(days=13)).date(),),
    ).fetchone()
    roller = uptimedays.Roller()
    with psycopg.connect(db_url, autocommit=True) as conn:
        roller.batch(conn)  # knows the head now
        db.execute(
            "INSERT INTO status_history (source_id, from_status, to_status, at)"
            " VALUES ('old', 'error', 'connected', %s)",
            (today - timedelta(days=13, hours=-6),),
        )
        while roller.batch(conn):
            pass
    after = db.execute(
        "SELECT up_s, down_s FROM uptime_days WHERE source_id = 'old' AND day = %s",
        ((today - timedelta(days=13)).date(),),
    ).fetchone()
    assert after is not None and after != before
    _compare(api, ids)
