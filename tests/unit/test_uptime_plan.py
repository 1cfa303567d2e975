"""statusapi.data.uptime.Plan (figures from daily rollup rows and a few asked parts of
days) against Timeline (every transition) on random histories: a state begun before the
range, a source created inside it, transitions on midnight, today still open, windows
starting mid-day, maintenance across midnights, and days the rollup lacks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statusapi.data.uptime import DAY, WINDOWS, Plan, Seconds, Timeline

NOW = 1_800_000_000.0 + 37_123.25  # a moment inside a UTC day
RANGE = 95 * DAY
WORDS = ("connected", "error", "disconnected", "unknown")

# offsets back from now: some on a midnight exactly, some anywhere
instants = st.one_of(
    st.floats(0, RANGE, allow_nan=False),
    st.integers(1, 95).map(lambda d: NOW - (NOW - NOW % DAY - d * DAY) + 0.0),
)


def _raw(tl: Timeline, lo: float, hi: float) -> Seconds:
    return (
        tl._upto(0, hi) - tl._upto(0, lo),
        tl._upto(1, hi) - tl._upto(1, lo),
        tl._upto(2, hi) - tl._upto(2, lo),
    )


@settings(max_examples=150, deadline=None)
@given(
    created_back=st.floats(DAY, 200 * DAY, allow_nan=False),
    history=st.lists(st.tuples(instants, st.sampled_from(WORDS)), max_size=60),
    spans=st.lists(
        st.tuples(st.floats(-DAY, RANGE, allow_nan=False), st.floats(60, 2 * DAY)), max_size=6
    ),
    missing=st.sets(st.integers(0, 92), max_size=10),
)
def test_the_plan_gives_the_timeline_figures(
    created_back: float,
    history: list[tuple[float, str]],
    spans: list[tuple[float, float]],
    missing: set[int],
) -> None:
    created = NOW - created_back
    transitions = sorted((NOW - back, to) for back, to in history)
    windows = [(NOW - back, NOW - back + length) for back, length in spans]
    # what the daemon rolls up: every closed day from the transitions, maintenance aside
    raw = Timeline(transitions, created_at=created, since=created)
    today = NOW - NOW % DAY
    rolled: dict[float, Seconds] = {}
    for n in range(1, 93):
        start = today - n * DAY
        if n not in missing and start + DAY > created:
            rolled[start] = _raw(raw, start, start + DAY)
    plan = Plan(NOW, created, rolled, windows)
    got_windows, got_daily = plan.figures([_raw(raw, lo, hi) for lo, hi in plan.asks])
    ref = Timeline(transitions, created_at=created, since=NOW - WINDOWS["90d"], maintenance=windows)
    for name, fig in ref.windows(NOW).items():
        for key in ("up_s", "down_s", "unknown_s", "maintenance_s"):
            assert got_windows[name][key] == pytest.approx(fig[key], abs=0.01), (name, key)
        if fig["uptime"] is None:
            assert got_windows[name]["uptime"] is None, name
        else:
            assert got_windows[name]["uptime"] == pytest.approx(fig["uptime"], abs=1e-3), name
    for got, want in zip(got_daily, ref.daily(NOW), strict=True):
        assert got["date"] == want["date"]
        assert got["down_s"] == pytest.approx(want["down_s"], abs=0.01), want["date"]
        assert (got["uptime"] is None) == (want["uptime"] is None), want["date"]
        if want["uptime"] is not None:
            assert got["uptime"] == pytest.approx(want["uptime"], abs=1e-3), want["date"]


def test_a_day_no_figure_cuts_asks_nothing() -> None:
    """With every closed day rolled up and no maintenance, only today and the four
    windows' first days are asked, each within one day."""
    created = NOW - 200 * DAY
    today = NOW - NOW % DAY
    rolled = {today - n * DAY: (DAY, 0.0, 0.0) for n in range(1, 93)}
    plan = Plan(NOW, created, rolled)
    assert len(plan.asks) == 1 + len(WINDOWS)
    assert all(hi - lo <= DAY for lo, hi in plan.asks)
    windows, daily = plan.figures([(hi - lo, 0.0, 0.0) for lo, hi in plan.asks])
    assert windows["90d"]["up_s"] == pytest.approx(WINDOWS["90d"])
    assert all(d["uptime"] == 100.0 for d in daily)
