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

# test_status: the newest probe's outcome
SUCCESS: Final = "success"
FAILED: Final = "failed"

TRANSITION: Final = "transition"
FLAPPING_STARTED: Final = "flapping_started"
FLAPPING_STOPPED: Final = "flapping_stopped"
EventKind = Literal["transition", "flapping_started", "flapping_stopped"]
EVENT_KINDS: Final[tuple[str, ...]] = (TRANSITION, FLAPPING_STARTED, FLAPPING_STOPPED)
