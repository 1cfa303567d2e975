"""The outage buffers without a database: trim, restore, carry."""

from __future__ import annotations

from healthd.core.debounce import Event, Observation, State
from healthd.store.buffers import Buffers, carry
from healthd.store.codec import Pending, ResultRow


def row(sid: str, at: float, reconnected: bool = False) -> ResultRow:
    return ResultRow(sid, Observation("connected", "", at), 1.0, State(), reconnected)


def ev(at: float) -> Event:
    return Event("transition", "unknown", "connected", "", at, ())


def test_the_newest_result_per_source_wins() -> None:
    b = Buffers()
    b.add_result(row("a", 1.0))
    b.add_result(row("a", 2.0))
    b.add_result(row("b", 1.5))
    assert {sid: r.obs.at for sid, r in b.results.items()} == {"a": 2.0, "b": 1.5}


def test_a_reconnection_is_carried_to_the_newer_result() -> None:
    assert carry(row("a", 2.0), row("a", 1.0, reconnected=True)).reconnected
    assert not carry(row("a", 2.0), row("a", 1.0)).reconnected
    assert not carry(row("a", 2.0), None).reconnected


def test_past_the_bound_the_oldest_events_are_dropped_and_counted() -> None:
    b = Buffers(max_events=3)
    for i in range(5):
        b.add_event("a", ev(float(i)))
    assert [e.at for _, e, _ in b.events] == [2.0, 3.0, 4.0]
    assert b.dropped_events == 2


def test_take_empties_and_restore_puts_the_batch_under_newer_entries() -> None:
    b = Buffers()
    b.add_result(row("a", 1.0, reconnected=True))
    b.add_result(row("b", 1.0))
    b.add_event("a", ev(1.0))
    results, events = b.take()
    assert not b and len(results) == 2 and len(events) == 1
    b.add_result(row("a", 2.0))  # arrived while the batch was being written
    b.add_event("a", ev(2.0))
    b.restore(results, events)
    assert b.results["a"].obs.at == 2.0 and b.results["a"].reconnected
    assert b.results["b"].obs.at == 1.0
    assert [e.at for _, e, _ in b.events] == [1.0, 2.0]


def test_restore_respects_the_bound_keeping_the_newest() -> None:
    b = Buffers(max_events=2)
    b.add_event("a", ev(3.0))
    b.restore({}, [Pending("a", ev(1.0)), Pending("a", ev(2.0))])
    assert [e.at for _, e, _ in b.events] == [2.0, 3.0]
    assert b.dropped_events == 1
