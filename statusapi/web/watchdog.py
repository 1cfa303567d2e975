"""systemd's watchdog for statusapi under gunicorn (deploy/statusapi.service: WatchdogSec=).

gunicorn sends READY=1 itself but nothing after it, so a master whose loop has stopped
turning (blocked on a full log pipe, a deadlock) would go on holding the socket while no
dead worker is replaced and no signal is handled. deploy/gunicorn.conf.py's ``when_ready``
hands the master to ``install``, which makes the master's own loop send WATCHDOG=1: the
loop calls ``Arbiter.murder_workers`` at every turn (at least once a second), and the
ping rides on that call, at half the watchdog period as sd_watchdog_enabled(3) advises,
and only while at least one worker is alive. A thread would keep pinging through a
stalled loop, which is what the watchdog is there to catch.

A worker that hangs is gunicorn's own business: the master kills one whose heartbeat is
older than ``timeout`` (deploy/gunicorn.conf.py) and starts another.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from gunicorn import systemd


def interval(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between pings (half of $WATCHDOG_USEC), or None when systemd asked for no
    watchdog, or asked another process for it ($WATCHDOG_PID)."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 2e6


class LoopPing:
    """Wraps the master's per-turn call: the original first, then WATCHDOG=1 when due."""

    def __init__(self, arbiter: Any, every: float, turn: Callable[[], None]) -> None:
        self.arbiter = arbiter
        self.every = every
        self.turn = turn
        self.last = float("-inf")

    def __call__(self) -> None:
        self.turn()
        now = time.monotonic()
        if now - self.last >= self.every and self.arbiter.WORKERS:
            systemd.sd_notify("WATCHDOG=1", self.arbiter.log)
            self.last = now


def install(arbiter: Any) -> bool:
    """Make ``arbiter``'s loop ping systemd's watchdog; False (nothing done) when systemd
    asked for none."""
    every = interval()
    if every is None:
        return False
    arbiter.murder_workers = LoopPing(arbiter, every, arbiter.murder_workers)
    # gunicorn's own logger: in the master only it has a handler (the app's are set up in
    # the workers), so the line lands in the same error log as the master's others
    arbiter.log.info("systemd watchdog: the master pings every %.1f s while its loop turns", every)
    return True
