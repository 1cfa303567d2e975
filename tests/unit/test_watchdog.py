"""statusapi's systemd watchdog: the interval systemd asks for, and the ping riding on
the gunicorn master's loop (statusapi/web/watchdog.py). The real gunicorn sending it to
a notify socket is in tests/integration/test_gunicorn.py."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from statusapi.web import watchdog


def test_interval_is_half_of_what_systemd_asks_and_only_for_this_process() -> None:
    assert watchdog.interval({}) is None
    assert watchdog.interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog.interval({"WATCHDOG_USEC": "junk"}) is None
    assert watchdog.interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog.interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, pid=7) == 15.0
    assert watchdog.interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"}, pid=7) is None


class Master:
    """The two things LoopPing reads of gunicorn's Arbiter: its workers and its logger."""

    def __init__(self) -> None:
        self.WORKERS: dict[int, Any] = {101: object()}
        self.log = logging.getLogger("test.master")
        self.turns = 0

    def murder_workers(self) -> None:
        self.turns += 1


def test_pings_ride_on_the_loop_when_due_and_only_with_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(0.01)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "3600000000")  # due once an hour: the first turn only
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))

    def received() -> list[bytes]:
        got = []
        try:
            while True:
                got.append(listener.recv(100))
        except TimeoutError:
            return got

    master = Master()
    assert watchdog.install(master)
    for _ in range(3):
        master.murder_workers()
    assert master.turns == 3  # gunicorn's own work still done at every turn
    assert received() == [b"WATCHDOG=1"]  # and one ping, not one per turn

    idle = Master()
    idle.WORKERS.clear()
    assert watchdog.install(idle)
    idle.murder_workers()
    assert received() == []  # no worker alive: no ping, systemd restarts the service
    listener.close()


def test_nothing_is_installed_without_a_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    master = Master()
    original = master.murder_workers
    assert not watchdog.install(master)
    assert master.murder_workers == original
