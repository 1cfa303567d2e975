"""The status state machine. Pure: no I/O and no clock reads (time comes in with each
result), so every rule below is unit- and property-tested.

Rules (docs/architecture.md, "How the status is decided"):
- ``connection_status`` changes only after ``fall`` consecutive failed results (or
  ``rise`` consecutive successes) that disagree with it. A failed streak may mix
  ``disconnected`` and ``error``; the newest wins.
- From ``unknown`` the first result is adopted at once.
- While a change is pending, the next probe is due after ``retry_interval``.
- Flapping: Nagios' weighted percent state change over the last 21 results; the flag
  rises at ``flap_high`` percent and falls below ``flap_low`` (hysteresis).
"""

from __future__ import annotations

from dataclasses import dataclass

from healthd.core.words import (
    CONNECTED,
    DISCONNECTED,
    ERROR,
    FLAPPING_STARTED,
    FLAPPING_STOPPED,
    TRANSITION,
    UNKNOWN,
    EventKind,
)

LETTERS = {CONNECTED: "c", DISCONNECTED: "d", ERROR: "e"}
HISTORY = 21  # Nagios' MAX_STATE_HISTORY_ENTRIES
STREAK_KEEP = 10  # results kept as the evidence of a transition


@dataclass(frozen=True)
class Thresholds:
    rise: int = 3
    fall: int = 3
    interval: float = 30.0
    retry_interval: float = 10.0
    flap_low: float = 20.0
    flap_high: float = 30.0


@dataclass(frozen=True)
class Observation:
    """One probe result as the state machine sees it. ``at`` is epoch seconds."""

    status: str  # connected | disconnected | error
    message: str = ""
    at: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status != CONNECTED


@dataclass(frozen=True)
class State:
    status: str = UNKNOWN
    pending: str | None = None
    count: int = 0
    streak: tuple[Observation, ...] = ()  # the pending streak's newest results
    recent: str = ""  # one letter per result, newest last, at most 21
    flapping: bool = False
    percent: float = 0.0


@dataclass(frozen=True)
class Event:
    kind: EventKind
    from_status: str
    to_status: str
    message: str
    at: float
    results: tuple[Observation, ...] = ()


@dataclass(frozen=True)
class Step:
    state: State
    events: tuple[Event, ...]
    next_due: float


def percent_state_change(recent: str, low: float = 0.75, high: float = 1.25) -> float:
    """Nagios' curved percent state change: newer changes weigh more (0.75 .. 1.25)."""
    if not recent or recent.count(recent[0]) == len(recent):
        return 0.0  # no change at all: the steady state of almost every source, cheaply
    offset = HISTORY - len(recent)  # a short history is aligned to the newest end
    total = 0.0
    for i in range(1, len(recent)):
        if recent[i] != recent[i - 1]:
            x = offset + i  # 1 .. 20
            total += low + (x - 1) * (high - low) / (HISTORY - 2)
    return total * 100.0 / (HISTORY - 1)


def step(state: State, obs: Observation, th: Thresholds) -> Step:
    """Feed one result; get the new state, the events it caused and when to probe next."""
    events: list[Event] = []
    new = _status_step(state, obs, th, events)
    new = _flap_step(new, obs, th, events)
    delay = th.retry_interval if new.pending is not None else th.interval
    return Step(new, tuple(events), obs.at + delay)


def _status_step(state: State, obs: Observation, th: Thresholds, events: list[Event]) -> State:
    if state.status == UNKNOWN or obs.status == state.status:
        if state.status != obs.status:
            events.append(Event(TRANSITION, state.status, obs.status, obs.message, obs.at, (obs,)))
        return _settled(state, obs.status)
    same_direction = state.pending is not None and (state.pending == CONNECTED) == (not obs.failed)
    count = state.count + 1 if same_direction else 1
    streak = ((*state.streak, obs) if same_direction else (obs,))[-STREAK_KEEP:]
    needed = th.fall if obs.failed else th.rise
    if count < needed:
        return State(
            status=state.status,
            pending=obs.status,
            count=count,
            streak=streak,
            recent=state.recent,
            flapping=state.flapping,
            percent=state.percent,
        )
    events.append(Event(TRANSITION, state.status, obs.status, obs.message, obs.at, streak))
    return _settled(state, obs.status)


def _settled(state: State, status: str) -> State:
    """``state`` at ``status`` with nothing pending (the same object when it already is:
    this runs for nearly every result, and dataclasses.replace was a tenth of a probe's
    own CPU)."""
    if state.status == status and state.pending is None and not state.count and not state.streak:
        return state
    return State(
        status=status,
        pending=None,
        count=0,
        streak=(),
        recent=state.recent,
        flapping=state.flapping,
        percent=state.percent,
    )


def _flap_step(state: State, obs: Observation, th: Thresholds, events: list[Event]) -> State:
    recent = (state.recent + LETTERS.get(obs.status, "e"))[-HISTORY:]
    percent = round(percent_state_change(recent), 2)
    flapping = state.flapping
    if not flapping and percent >= th.flap_high:
        flapping = True
        events.append(
            Event(
                FLAPPING_STARTED,
                state.status,
                state.status,
                f"percent state change {percent:.1f} %",
                obs.at,
            )
        )
    elif flapping and percent < th.flap_low:
        flapping = False
        events.append(
            Event(
                FLAPPING_STOPPED,
                state.status,
                state.status,
                f"percent state change {percent:.1f} %",
                obs.at,
            )
        )
    return State(
        status=state.status,
        pending=state.pending,
        count=state.count,
        streak=state.streak,
        recent=recent,
        flapping=flapping,
        percent=percent,
    )
