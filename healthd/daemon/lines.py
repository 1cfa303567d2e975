"""The daemon's log lines that people and scripts read: the original's start line, the
summary per interval (one daemon's or, under a supervisor, the whole service's) and the
line per event. One place, so a worker, its supervisor and a lone daemon say the same words.
"""

from __future__ import annotations

from dataclasses import dataclass

from healthd.core.debounce import Event
from healthd.core.words import CONNECTED, TRANSITION


@dataclass(frozen=True)
class Summary:
    """What the periodic summary line reports, since the previous one."""

    healthy: int
    failed: int
    reconnected: int
    behind: float  # the largest schedule lag, s


def start_line(interval: float) -> str:
    """The original's start line, exactly; an integral interval without ".0"."""
    secs = str(int(interval)) if float(interval).is_integer() else str(interval)
    return (
        f"Health check service started ({secs}s interval, silent mode, DB sync enabled, "
        "debounce active)"
    )


def summary_line(s: Summary, buffered: int | None) -> str:
    """The periodic summary; ``buffered`` is given while the database is unreachable."""
    line = f"Health check: {s.healthy} healthy, {s.failed} failed, {s.reconnected} reconnected"
    if s.behind > 1.0:
        line += (
            f" (behind schedule by up to {s.behind:.1f} s:"
            " more probes than this daemon keeps up with)"
        )
    if buffered is not None:
        line += f" (database unreachable; {buffered} results buffered)"
    return line


def event_line(source_id: str, ev: Event) -> str:
    """One line per confirmed transition or flapping change; the reason of a failure is
    kept, a recovery needs none."""
    if ev.kind == TRANSITION:
        reason = f" ({ev.message})" if ev.message and ev.to_status != CONNECTED else ""
        return f"source {source_id}: {ev.from_status} -> {ev.to_status}{reason}"
    return f"source {source_id}: {ev.kind.replace('_', ' ')} ({ev.message})"
