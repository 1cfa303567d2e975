"""What a supervised worker and its supervisor share (healthd/daemon/supervisor.py runs
the workers; each worker is a plain daemon, healthd/daemon/loop.py): the environment that
tells a worker it is supervised, and the summary report it sends instead of logging.
Both sides import this module; neither imports the other.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
from dataclasses import asdict, dataclass

SUPERVISED_ENV = "HEALTHD_SUPERVISED"  # tells a worker to report its summary, not log it
SIBLINGS_ENV = "HEALTHD_SIBLINGS"  # how many workers the supervisor runs
SUMMARY_KEY = "HEALTHD_SUMMARY"  # a worker's report, as an sd_notify variable
SOURCES_KEY = "HEALTHD_SOURCES"  # a worker's source count, sent with READY=1
NODE_KEY = "HEALTHD_NODE"  # a worker's node id: whose shards to release when it dies


@dataclass
class Report:
    """What a worker last reported (HEALTHD_SUMMARY=<json>, every second)."""

    healthy: int = 0
    failed: int = 0
    reconnected: int = 0  # since its previous report
    behind: float = 0.0  # its largest schedule lag since its previous report
    buffered: int | None = None  # results held while the database is unreachable

    @classmethod
    def parse(cls, raw: str) -> Report | None:
        try:
            d = json.loads(raw)
            buffered = d.get("buffered")
            return cls(
                healthy=int(d["healthy"]),
                failed=int(d["failed"]),
                reconnected=int(d["reconnected"]),
                behind=float(d["behind"]),
                buffered=None if buffered is None else int(buffered),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def datagram(self) -> str:
        """The sd_notify line a worker sends (parsed back by ``parse``)."""
        return f"{SUMMARY_KEY}={json.dumps(asdict(self))}"


def supervisor_pid() -> int | None:
    """In a worker: the supervisor's pid, or None when this process is not supervised."""
    raw = os.environ.get(SUPERVISED_ENV, "")
    return int(raw) if raw.isdigit() else None


def siblings() -> int:
    """In a worker: how many workers its supervisor runs (1 when not supervised). The
    first lease round takes only its share of them: a worker that took every shard because
    it heartbeat first would load every source, then hand half of them over."""
    raw = os.environ.get(SIBLINGS_ENV, "")
    return int(raw) if raw.isdigit() and supervisor_pid() is not None else 1


def die_with_supervisor() -> bool:
    """In a worker: get SIGTERM when the supervisor dies, however it dies, so a killed
    supervisor leaves no probing orphans (Linux prctl PR_SET_PDEATHSIG). False when the
    supervisor is already gone (this worker should stop at once)."""
    parent = supervisor_pid()
    if parent is None:
        return True
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    return os.getppid() == parent
