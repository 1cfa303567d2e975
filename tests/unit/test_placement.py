"""The one placement rule (healthd/core/placement.py): start-up, resync and hand-over alike."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from healthd.core.placement import MIN_RATE, Candidate, natural_due, place


def test_a_source_probed_recently_keeps_its_cadence() -> None:
    due = place([Candidate("a", 30.0, 112.0)], now=100.0)
    assert due == {"a": 112.0}


def test_a_handful_of_new_sources_start_at_once() -> None:
    due = place([Candidate(f"s{i}", 30.0, None) for i in range(5)], now=100.0)
    assert all(100.0 <= d <= 100.0 + 5 / MIN_RATE for d in due.values())


def test_a_large_backlog_is_spread_over_about_one_interval_most_overdue_first() -> None:
    n = 100_000
    cands = [Candidate(f"s{i}", 30.0, 50.0 + i * 1e-4) for i in range(n)]
    due = place(cands, now=100.0)
    assert max(due.values()) <= 100.0 + 30.0
    assert max(due.values()) >= 100.0 + 29.0  # not all at once: the batch's own rate
    assert due["s0"] < due["s1"] < due[f"s{n - 1}"]  # the longest-waiting go first


def test_hand_over_catches_up_within_the_gap() -> None:
    """50,000 sources moving between daemons, 5 s without an owner: the ~8,300 overdue
    start within about those 5 s, the rest at their own time."""
    n, interval, gap = 50_000, 30.0, 5.0
    cands = [Candidate(f"s{i}", interval, 100.0 - gap + interval * i / n) for i in range(n)]
    due = place(cands, now=100.0)
    overdue = [due[c.id] for c in cands if c.natural is not None and c.natural <= 100.0]
    assert overdue and max(overdue) <= 100.0 + gap + 0.5
    # the others keep their time but for the catching up: never more than the gap late
    late = [due[c.id] - c.natural for c in cands if c.natural is not None and c.natural > 100.0]
    assert max(late) <= gap + 0.5


def test_bunched_sources_are_spread_out_again() -> None:
    """Probed within one second under a 1 s interval, then taken on at 30 s: released at
    about the batch's rate instead of all at once."""
    cands = [Candidate(f"s{i}", 30.0, 100.0 + i / 5000) for i in range(5000)]
    due = sorted(place(cands, now=99.0).values())
    assert due[-1] - due[0] >= 19.9  # 30 s / 1.25
    gaps = [b - a for a, b in zip(due, due[1:], strict=False)]
    assert min(gaps) >= 0.99 / (1.25 * 200)  # never faster than 1.25 x MIN_RATE here


def test_natural_due_ignores_a_probe_of_an_older_definition() -> None:
    assert natural_due(10.0, 1000.0, 990.0, None, 30.0) == 30.0
    assert natural_due(10.0, 1000.0, 990.0, 995.0, 30.0) is None  # changed after the probe
    assert natural_due(10.0, 1000.0, None, None, 30.0) is None


@given(
    st.lists(
        st.tuples(st.floats(0.5, 3600), st.one_of(st.none(), st.floats(-1e5, 1e5))),
        max_size=200,
    )
)
def test_every_source_is_due_within_one_period_or_at_its_natural_time(
    items: list[tuple[float, float | None]],
) -> None:
    cands = [Candidate(f"s{i}", p, n) for i, (p, n) in enumerate(items)]
    due = place(cands, now=0.0)
    assert set(due) == {c.id for c in cands}
    for c in cands:
        assert 0.0 <= due[c.id] <= c.period  # never more than one period from now
        if c.natural is not None and 0.0 < c.natural <= c.period:
            assert c.natural <= due[c.id] <= c.natural + c.period
        elif c.natural is not None and c.natural > c.period:
            assert due[c.id] == c.period  # a last probe stamped by a clock ahead of ours


def test_a_last_probe_an_hour_ahead_is_due_within_one_period() -> None:
    """Written by a daemon whose clock ran an hour ahead: due one period from now at the
    latest, not an hour and a period."""
    natural = natural_due(10.0, 1000.0, 1000.0 + 3600.0, None, 30.0)
    assert natural == 10.0 + 3630.0
    assert place([Candidate("a", 30.0, natural)], now=10.0) == {"a": 40.0}


@given(
    now=st.floats(-1e6, 1e6),
    ahead=st.floats(0, 1e7),
    periods=st.lists(st.floats(0.05, 86_400), min_size=1, max_size=100),
)
def test_no_clock_ahead_of_ours_places_a_source_past_one_period(
    now: float, ahead: float, periods: list[float]
) -> None:
    """Whatever a last probe's clock said (a take-over, a row written by SQL), every source
    is due within one period of now, and not before now."""
    wall = 1.7e9
    cands = [
        Candidate(f"s{i}", p, natural_due(now, wall, wall + ahead, None, p))
        for i, p in enumerate(periods)
    ]
    due = place(cands, now)
    for c in cands:
        assert now <= due[c.id] <= now + c.period
