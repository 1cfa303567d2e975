"""sd_notify without libsystemd: one datagram per message to $NOTIFY_SOCKET."""

from __future__ import annotations

import contextlib
import os
import socket


class Notifier:
    def __init__(self, path: str | None = None) -> None:
        self.path = path if path is not None else os.environ.get("NOTIFY_SOCKET", "")
        self._sock: socket.socket | None = None
        if self.path:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        usec = os.environ.get("WATCHDOG_USEC", "")
        # ping at half the watchdog period, as sd_watchdog_enabled(3) advises
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else 5.0

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *lines: str) -> None:
        if self._sock is None:
            return
        addr = "\0" + self.path[1:] if self.path.startswith("@") else self.path
        with contextlib.suppress(OSError):  # systemd gone: nothing to tell
            self._sock.sendto("\n".join(lines).encode(), addr)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
