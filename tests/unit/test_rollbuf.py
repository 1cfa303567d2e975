"""The in-memory rollup sums (healthd/store/rollbuf.py): what a closed minute adds up to."""

from __future__ import annotations

from healthd.core import rollups
from healthd.core.debounce import Observation, State
from healthd.core.phases import Phases
from healthd.store.codec import ResultRow
from healthd.store.rollbuf import PHASED, Rollups

M = 1_764_000_000 - 1_764_000_000 % 60


def row(
    sid: str, at: float, status: str = "connected", lat: float = 10.0, gen: int | None = None
) -> ResultRow:
    return ResultRow(sid, Observation(status, "", at), lat, State(status="connected"), False, gen)


def test_sums_per_source_and_minute_and_only_closed_minutes_leave() -> None:
    r = Rollups()
    for at, st, lat in (
        (M + 1, "connected", 3.0),
        (M + 20, "error", 5000.0),
        (M + 59, "connected", 40.0),
    ):
        r.add(row("a", at, st, lat))
    r.add(row("a", M + 61))  # the next minute
    assert r.take(M + 59) == {}
    taken = r.take(M + 60)
    hist = [0] * rollups.SLOTS
    hist[rollups.slot(3.0)] += 1
    hist[rollups.slot(40.0)] += 1
    # no phases reported: the phase count and sums that follow the histogram stay 0
    assert taken == {("a", M, None): [3, 1, 40.0, *hist, 0, 0.0, 0.0, 0.0, 0.0, 0.0]}
    assert len(r) == 1
    assert list(r.take(None)) == [("a", M + 60, None)]
    assert not r


def test_two_generations_of_one_minute_go_in_two_takes_and_restore_adds() -> None:
    r = Rollups()
    r.add(row("a", M + 1, gen=1))
    r.add(row("a", M + 2, gen=2))
    first = r.take(None)
    assert len(first) == 1 and len(r) == 1
    r.restore(first)  # the write failed: back, nothing lost
    r.add(row("a", M + 3, gen=1))
    both = r.take(None) | r.take(None)
    assert both[("a", M, 1)][0] == 2 and both[("a", M, 2)][0] == 1


def test_held_minutes_are_bounded_oldest_first() -> None:
    r = Rollups(max_entries=4)
    for minute in range(3):
        for sid in ("a", "b"):
            r.add(row(sid, M + 60 * minute + 1))
    assert len(r) == 4 and r.dropped == 2
    assert sorted({k[1] for k in r.take(None)}) == [M + 60, M + 120]
    assert len(r) == 0


def test_a_limited_take_gives_the_oldest_minutes_first_in_slices_and_loses_nothing() -> None:
    r = Rollups()
    for minute in range(2):
        for i in range(5):
            r.add(row(f"s{i}", M + 60 * minute + 1))
    r.add(row("s0", M + 2, gen=7))  # a second generation of s0's first minute
    slices = [r.take(M + 200, limit=3) for _ in range(5)]
    assert [len(x) for x in slices] == [3, 3, 3, 2, 0]
    order = [k[1] for x in slices for k in x]
    assert order == sorted(order)  # oldest minute first
    for x in slices:  # never one row twice in one statement
        assert len({(k[0], k[1]) for k in x}) == len(x)
    everything = {k: v for x in slices for k, v in x.items()}
    assert len(everything) == 11 and ("s0", M, 7) in everything and len(r) == 0
    assert not r


def test_phases_of_successes_are_summed_and_failures_add_none() -> None:
    r = Rollups()
    for at, st, ph in (
        (M + 1, "connected", Phases(0.1, 0.2, 1.0, 3.0, 0.5)),
        (M + 2, "connected", Phases(0.3, 0.2, 2.0, 5.0, 0.5)),
        (M + 3, "error", Phases(9.0, 9.0, 9.0, 9.0, 9.0)),  # a 500 answered: not counted
        (M + 4, "connected", None),  # a probe without phases (tcp, say)
    ):
        one = row("a", at, st)
        one.phases = ph
        r.add(one)
    e = r.take(None)[("a", M, None)]
    assert e[0] == 4 and e[1] == 1
    assert e[PHASED] == 2
    assert [round(x, 6) for x in e[PHASED + 1 :]] == [0.4, 0.4, 3.0, 8.0, 1.0]
    r.restore({("a", M, None): e})  # a failed write puts them back, added
    r.add(row("a", M + 5))
    again = r.take(None)[("a", M, None)]
    assert again[PHASED] == 2 and round(again[PHASED + 4], 6) == 8.0
