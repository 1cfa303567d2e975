"""How the daemon's in-memory state maps to columns: results and observations as JSON,
a row's debounce state back into a State."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from healthd.core.debounce import Event, Observation, State
from healthd.core.phases import Phases
from healthd.core.words import ERROR


@dataclass
class ResultRow:
    source_id: str
    obs: Observation
    latency_ms: float | None
    state: State
    reconnected: bool
    # the fencing token: the generation of the shard lease this result was probed under
    # (None: not fenced, for tools that write without leases; -1: a shard not held)
    gen: int | None = None
    phases: Phases | None = None  # an HTTP probe's phases, for the rollups only


class Pending(NamedTuple):
    """An event waiting to be written, with the lease generation it was found under."""

    source_id: str
    event: Event
    gen: int | None = None


def ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def obs_json(o: Observation) -> dict[str, Any]:
    return {"status": o.status, "message": o.message, "at": ts(o.at).isoformat()}


def obs_from_json(d: dict[str, Any]) -> Observation:
    at = d.get("at")
    epoch = datetime.fromisoformat(at).timestamp() if isinstance(at, str) else 0.0
    return Observation(str(d.get("status", ERROR)), str(d.get("message", "")), epoch)


def state_from_row(row: dict[str, Any]) -> State:
    streak = tuple(
        obs_from_json(d) for d in (row.get("pending_results") or []) if isinstance(d, dict)
    )
    return State(
        status=row["connection_status"],
        pending=row["pending_status"],
        count=row["pending_count"] if row["pending_status"] else 0,
        streak=streak,
        recent=row["recent_results"] or "",
        flapping=row["flapping"],
        percent=row["percent_state_change"] or 0.0,
    )
