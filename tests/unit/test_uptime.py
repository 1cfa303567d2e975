"""The uptime rule (docs/status-page.md) on hand-made timelines (no database)."""

from __future__ import annotations

import pytest

from statusapi.data.uptime import DAY, Timeline

NOW = 1_764_000_000.0 - (1_764_000_000.0 % DAY) + 12 * 3600  # noon UTC


def test_down_time_is_the_time_between_transitions() -> None:
    tl = Timeline(
        [(NOW - 3600, "connected"), (NOW - 1800, "error"), (NOW - 600, "connected")],
        created_at=NOW - 7200,
        since=NOW - 90 * DAY,
    )
    w = tl.windows(NOW)["24h"]
    assert w["down_s"] == 1200.0
    assert w["up_s"] == 2400.0
    assert w["unknown_s"] == 3600.0  # created, not yet confirmed: not held against it
    assert w["maintenance_s"] == 0.0
    assert w["uptime"] == pytest.approx(100 * 2400 / 3600, abs=1e-4)


def test_window_starting_mid_outage_counts_only_its_part() -> None:
    # down since 30 h ago, up since 20 h ago: the 24 h window sees 4 h of the outage
    tl = Timeline(
        [
            (NOW - 40 * 3600, "connected"),
            (NOW - 30 * 3600, "disconnected"),
            (NOW - 20 * 3600, "connected"),
        ],
        created_at=NOW - 50 * 3600,
        since=NOW - 90 * DAY,
    )
    assert tl.windows(NOW)["24h"]["down_s"] == 4 * 3600
    assert tl.windows(NOW)["7d"]["down_s"] == 10 * 3600


def test_state_before_the_range_carries_in() -> None:
    # the only transition is older than the range: the whole range is in that state
    tl = Timeline([(NOW - 100 * DAY, "error")], NOW - 200 * DAY, NOW - 90 * DAY)
    w = tl.windows(NOW)
    assert w["90d"]["down_s"] == 90 * DAY and w["90d"]["uptime"] == 0.0
    assert w["24h"]["down_s"] == DAY


def test_source_created_inside_the_window() -> None:
    tl = Timeline([(NOW - 3 * 3600, "connected")], NOW - 3 * 3600, NOW - 90 * DAY)
    w = tl.windows(NOW)["30d"]
    assert (w["up_s"], w["down_s"], w["unknown_s"]) == (3 * 3600, 0.0, 0.0)
    assert w["uptime"] == 100.0
    daily = tl.daily(NOW)
    assert len(daily) == 90 and daily[-1]["uptime"] == 100.0
    assert all(d["uptime"] is None for d in daily[:-1])  # did not exist: no data


def test_days_split_at_utc_midnight() -> None:
    midnight = NOW - 12 * 3600
    tl = Timeline(
        [(midnight - 3600, "connected"), (midnight - 600, "error"), (midnight + 300, "connected")],
        midnight - 2 * 3600,
        NOW - 90 * DAY,
    )
    yesterday, today = tl.daily(NOW)[-2:]
    assert yesterday["down_s"] == 600.0 and today["down_s"] == 300.0
    assert today["uptime"] == pytest.approx(100 * (12 * 3600 - 300) / (12 * 3600), abs=1e-4)


def test_maintenance_is_apart() -> None:
    tl = Timeline(
        [(NOW - 5000, "connected"), (NOW - 4000, "error"), (NOW - 1000, "connected")],
        NOW - 5000,
        NOW - 90 * DAY,
        maintenance=[(NOW - 3500, NOW - 2500)],
    )
    w = tl.windows(NOW)["24h"]
    assert w["maintenance_s"] == 1000.0
    assert w["down_s"] == 2000.0
    assert w["up_s"] == 2000.0


def test_no_data_at_all() -> None:
    tl = Timeline([], NOW, NOW - 90 * DAY)
    assert tl.windows(NOW)["24h"]["uptime"] is None


def test_a_later_question_sees_the_last_state_go_on() -> None:
    tl = Timeline([(NOW - 3600, "error")], NOW - 3600, NOW - 90 * DAY)
    assert tl.windows(NOW)["24h"]["down_s"] == 3600.0
    assert tl.windows(NOW + 60)["24h"]["down_s"] == 3660.0
