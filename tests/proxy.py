"""A TCP proxy on 127.0.0.1 that a test can break the way networks break.

- ``forward()``: pass bytes both ways (the normal state; also what heals the others);
- ``cut()``: reset every open connection (RST) and refuse new ones, like a partition
  that the kernel reports;
- ``stall(new=True)``: stop passing bytes on every open connection without closing
  anything (the peer's kernel still ACKs, so the client's TCP stack sees nothing wrong:
  only an application-level deadline notices); with ``new=False`` connections opened
  later pass bytes normally (a black-holed path while a fresh one works).

Everything runs on an asyncio loop in a daemon thread; the methods are called from the
test's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import struct
import threading
from typing import Any


class _Link:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.writers = (client, upstream)
        self.flowing = asyncio.Event()
        self.flowing.set()

    def reset(self) -> None:
        for w in self.writers:
            sock = w.get_extra_info("socket")
            if sock is not None:
                # linger 0: close() sends RST instead of FIN
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()


class Proxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.mode = "forward"  # forward | cut | stall
        self.links: set[_Link] = set()
        self.accepted = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server = self._call(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port: int = self._server.sockets[0].getsockname()[1]

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def url(self, db_url: str) -> str:
        """``db_url`` (postgresql://user@127.0.0.1:PORT/db) pointed at this proxy."""
        head, _, rest = db_url.partition("@")
        hostport, _, tail = rest.partition("/")
        return f"{head}@127.0.0.1:{self.port}/{tail}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "cut":
            _Link(writer, writer).reset()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _Link(writer, writer).reset()
            return
        link = _Link(writer, up_writer)
        if self.mode == "stall":
            link.flowing.clear()
        self.links.add(link)
        try:
            await asyncio.gather(
                self._pump(link, reader, up_writer), self._pump(link, up_reader, writer)
            )
        finally:
            self.links.discard(link)
            for w in link.writers:
                w.transport.abort()

    @staticmethod
    async def _pump(link: _Link, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while True:
                await link.flowing.wait()
                data = await src.read(65536)
                if not data:
                    break
                await link.flowing.wait()  # a chunk read just before a stall is held too
                dst.write(data)
                await dst.drain()
        for w in link.writers:
            w.transport.abort()

    # -- test thread ---------------------------------------------------------------------
    def _set(self, existing: str, new: str) -> None:
        async def apply() -> None:
            for link in list(self.links):
                if existing == "reset":
                    link.reset()
                    self.links.discard(link)
                elif existing == "stall":
                    link.flowing.clear()
                else:
                    link.flowing.set()
            self.mode = new

        self._call(apply())

    def forward(self) -> None:
        self._set("flow", "forward")

    def cut(self) -> None:
        self._set("reset", "cut")

    def stall(self, new: bool = True) -> None:
        self._set("stall", "stall" if new else "forward")

    def close(self) -> None:
        async def shut() -> None:
            self._server.close()
            for link in list(self.links):
                link.reset()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self._call(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.links.clear()
        with contextlib.suppress(RuntimeError):
            self.loop.close()
        # finalise the transports now: left to a later garbage collection, their __del__
        # can run inside an unrelated compile() and trip CPython 3.11's AST depth check
        gc.collect()
