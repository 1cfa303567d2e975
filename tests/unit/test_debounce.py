"""The debounce state machine, exhaustively: examples for each rule, properties for all."""

from __future__ import annotations

import json
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from healthd.core.debounce import Observation, State, Thresholds, percent_state_change, step
from healthd.store.codec import obs_json, state_from_row

TH = Thresholds(rise=3, fall=3, interval=30, retry_interval=10)
C, D, E = "connected", "disconnected", "error"


def run(statuses: list[str], th: Thresholds = TH, state: State | None = None):
    state = state or State()
    events, dues = [], []
    for i, s in enumerate(statuses):
        out = step(state, Observation(s, f"msg {i}", float(i)), th)
        state = out.state
        events.extend(out.events)
        dues.append(out.next_due - i)
    return state, events, dues


def test_first_result_is_adopted_at_once() -> None:
    state, events, _ = run([E])
    assert state.status == E
    assert [(e.kind, e.from_status, e.to_status) for e in events] == [("transition", "unknown", E)]


def test_needs_fall_failures_then_rise_successes() -> None:
    state, events, dues = run([C, E, E, D, C, C, C])
    transitions = [(e.from_status, e.to_status, e.at) for e in events if e.kind == "transition"]
    # the failed streak mixed error and disconnected: the newest (disconnected) wins
    assert transitions == [("unknown", C, 0.0), (C, D, 3.0), (D, C, 6.0)]
    assert state.status == C and state.pending is None
    # retry cadence while a change is pending, the normal interval otherwise
    assert dues == [30, 10, 10, 30, 10, 10, 30]


def test_transition_carries_the_results_that_confirmed_it() -> None:
    _, events, _ = run([C, E, D, E])
    last = events[-1]
    assert [o.status for o in last.results] == [E, D, E]
    assert last.message == "msg 3" and last.to_status == E


def test_a_disagreeing_blip_resets_the_streak() -> None:
    state, events, _ = run([C, E, E, C, E, E])
    assert state.status == C and state.pending == E and state.count == 2
    assert len([e for e in events if e.kind == "transition"]) == 1


def test_failure_kind_change_needs_fall_results() -> None:
    state, events, _ = run([D, E, E])
    assert state.status == D and state.pending == E
    state, events, _ = run([E], state=state)
    assert state.status == E and events[-1].from_status == D


def test_percent_state_change_matches_nagios_curve() -> None:
    assert percent_state_change("c" * 21) == 0
    # every one of the 20 possible changes: the weights 0.75..1.25 average to 1.0 per change
    assert round(percent_state_change("cd" * 10 + "c"), 6) == 100.0
    # one change at the newest position weighs 1.25
    assert round(percent_state_change("c" * 20 + "d"), 6) == 6.25


def test_alternating_results_raise_flapping_and_steady_results_clear_it() -> None:
    state, events, _ = run([C, E] * 6)
    assert state.flapping and state.status == C
    assert [e.kind for e in events].count("flapping_started") == 1
    state, events, _ = run([C] * 21, state=state)
    assert not state.flapping and [e.kind for e in events] == ["flapping_stopped"]


statuses = st.lists(st.sampled_from([C, D, E]), min_size=1, max_size=80)
thresholds = st.builds(Thresholds, rise=st.integers(1, 5), fall=st.integers(1, 5))


@settings(max_examples=400)
@given(statuses, thresholds)
def test_status_changes_only_after_enough_agreeing_results(seq: list[str], th: Thresholds) -> None:
    state = State()
    history: list[str] = []
    for i, s in enumerate(seq):
        before = state.status
        out = step(state, Observation(s, "", float(i)), th)
        history.append(s)
        state = out.state
        if state.status != before and before != "unknown":
            failed = state.status != C
            needed = th.fall if failed else th.rise
            tail = history[-needed:]
            assert len(tail) == needed
            # the last `needed` results all point the same way, and away from `before`
            assert all((x != C) == failed and x != before for x in tail)
            assert tail[-1] == state.status  # the newest failure kind wins
        transitions = [e for e in out.events if e.kind == "transition"]
        assert len(transitions) == (1 if state.status != before else 0)


@given(st.integers(2, 5), st.integers(2, 5), st.sampled_from([D, E]), st.integers(2, 60))
def test_strictly_alternating_results_never_change_status(
    rise: int, fall: int, bad: str, n: int
) -> None:
    th = Thresholds(rise=rise, fall=fall)
    for first in (C, bad):
        seq = [first] + [bad if i % 2 == 0 else C for i in range(n)]
        state, events, _ = run(seq, th)
        assert [e for e in events if e.kind == "transition"][1:] == []


@given(st.lists(st.sampled_from([D, E]), min_size=3, max_size=3))
def test_mixed_failure_kinds_count_as_one_streak(fails: list[str]) -> None:
    state, _, _ = run([C, *fails])
    assert state.status == fails[-1]


def _float4(x: float) -> float:
    """What a PostgreSQL ``real`` column gives back for ``x``."""
    return struct.unpack("f", struct.pack("f", x))[0]


def through_the_table(state: State) -> State:
    """``state`` written the way the store writes it (status.write_results: the streak as
    JSON of obs_json, percent_state_change a ``real``) and read back by the daemon's
    codec (state_from_row), as after a restart."""
    row = {
        "connection_status": state.status,
        "pending_status": state.pending,
        "pending_count": state.count,
        "pending_results": json.loads(json.dumps([obs_json(o) for o in state.streak])),
        "recent_results": state.recent,
        "flapping": state.flapping,
        "percent_state_change": _float4(state.percent),
    }
    return state_from_row(row)


@given(statuses, statuses, thresholds)
def test_a_restored_state_continues_its_streak(a: list[str], b: list[str], th: Thresholds) -> None:
    state, _, _ = run(a, th)
    # what the store persists and reads back: the same fields, rebuilt
    restored = through_the_table(state)
    assert run(b, th, state=restored)[:2] == run(b, th, state=state)[:2]
