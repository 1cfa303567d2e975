"""The tcp plugin against a peer that accepts and never reads: a ``send`` larger than
the socket buffers take used to hang the probe for good (the backstop cancelled the
drain, then the close waited for the unsent bytes to flush, with nothing left to cancel
it), so the source was never probed again."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

from healthd import plugins


def test_a_peer_that_never_reads_fails_the_probe_within_its_timeout() -> None:
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(lst.accept()[0])  # and never read
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    port = lst.getsockname()[1]
    try:
        probe = plugins.create(
            "tcp", {"host": "127.0.0.1", "port": port, "send": "x" * 8_000_000, "expect": "y"}
        )

        async def go() -> tuple[float, str, str]:
            started = time.monotonic()
            # the bound here is only so that a hang fails the test instead of the run
            r = await asyncio.wait_for(plugins.run_check(probe, 1.0), 20)
            return time.monotonic() - started, r.status, r.message

        took, status, message = asyncio.run(go())
        assert took < 3, (took, message)
        assert status in ("error", "disconnected"), (status, message)
    finally:
        lst.close()
        for c in held:
            c.close()
