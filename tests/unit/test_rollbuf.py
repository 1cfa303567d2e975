"""The in-memory rollup sums (healthd/store/rollbuf.py): what a closed minute adds up to."""

from __future__ import annotations

from healthd.core import rollups
from healthd.core.debounce import Observation, State
from healthd.store.codec import ResultRow
from healthd.store.rollbuf import Rollups

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
    assert taken == {("a", M, None): [3, 1, 40.0, *hist]}
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
