"""The status words and event kinds, defined once (the migrations' CHECK constraints
spell the same words: migrations/0001_data_sources.sql)."""

from __future__ import annotations

from typing import Final, Literal

UNKNOWN: Final = "unknown"
CONNECTED: Final = "connected"
DISCONNECTED: Final = "disconnected"
ERROR: Final = "error"

# what a probe can report; a source is also `unknown` until its first result
Status = Literal["connected", "disconnected", "error"]
PROBE_STATUSES: Final[tuple[str, ...]] = (CONNECTED, DISCONNECTED, ERROR)
STATUSES: Final[tuple[str, ...]] = (UNKNOWN, *PROBE_STATUSES)
# the statuses that count as down: held against uptime, the banner's "not connected"
DOWN: Final[tuple[str, ...]] = (DISCONNECTED, ERROR)
# the order a person reads them in (the status page's counts, `healthd status`)
SHOWN_ORDER: Final[tuple[str, ...]] = (CONNECTED, DISCONNECTED, ERROR, UNKNOWN)

# test_status: the newest probe's outcome
SUCCESS: Final = "success"
FAILED: Final = "failed"

TRANSITION: Final = "transition"
FLAPPING_STARTED: Final = "flapping_started"
FLAPPING_STOPPED: Final = "flapping_stopped"
EventKind = Literal["transition", "flapping_started", "flapping_stopped"]
EVENT_KINDS: Final[tuple[str, ...]] = (TRANSITION, FLAPPING_STARTED, FLAPPING_STOPPED)


def sql_list(words: tuple[str, ...]) -> str:
    """The words as a list of SQL string literals, for a constant IN (...) (the words are
    plain lowercase, so quoting them needs no escaping)."""
    assert all(w.isidentifier() and w.islower() for w in words)
    return ", ".join(f"'{w}'" for w in words)
