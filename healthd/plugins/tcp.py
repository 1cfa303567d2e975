"""TCP: connect, optionally send a line and expect an answer (PING / +PONG)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from healthd.core.words import CONNECTED
from healthd.plugins.base import PORTS, Field, Plugin, ProbeResult, elapsed_ms

# what of a reply is searched for ``expect``: as much as the http plugin reads of a body
# for body_contains (healthd/plugins/http.py); a reply without it by then is an error
REPLY_LIMIT = 1 << 20
READ_SIZE = 65536


class TcpPlugin(Plugin):
    name = "tcp"
    description = "TCP connect; optionally send bytes and expect a reply containing some text"
    fields = {
        "host": Field("str", required=True),
        "port": Field("int", required=True, bounds=PORTS),
        "send": Field(
            "str", refs=True, help="sent after connecting (\\r\\n is not added; may be a reference)"
        ),
        "expect": Field("str", help="the reply must contain this"),
    }

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        host, port = cfg["host"], cfg["port"]
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except TimeoutError:
            return ProbeResult.disconnected(
                f"timed out after {timeout:g} s connecting to {host}:{port}"
            )
        except ConnectionRefusedError:
            return ProbeResult.disconnected(
                f"connection refused ({host}:{port})", elapsed_ms(started)
            )
        except OSError as exc:
            reason = (exc.strerror or type(exc).__name__).lower()
            return ProbeResult.disconnected(f"{reason} ({host}:{port})", elapsed_ms(started))
        try:
            return await self._converse(reader, writer, cfg, started, timeout)
        finally:
            if writer.transport.get_write_buffer_size():
                # bytes the peer never took: closing would wait for them to flush, for
                # ever if it reads nothing (and nothing is left to cancel that wait)
                writer.transport.abort()
            else:
                writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _converse(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        cfg: dict[str, object],
        started: float,
        timeout: float,
    ) -> ProbeResult:
        if cfg.get("send"):
            writer.write(str(cfg["send"]).encode())
            try:
                async with asyncio.timeout(max(timeout - (time.perf_counter() - started), 0.01)):
                    await writer.drain()
            except TimeoutError:
                return ProbeResult.error(
                    f"the peer did not take what was sent within {timeout:g} s",
                    elapsed_ms(started),
                )
        expect = cfg.get("expect")
        if not expect:
            return ProbeResult.connected(CONNECTED, elapsed_ms(started))
        wanted = str(expect).encode()
        left = timeout - (time.perf_counter() - started)
        try:
            async with asyncio.timeout(max(left, 0.01)):
                found = await _find(reader, wanted)
        except TimeoutError:
            return ProbeResult.error(
                f"no {expect!r} in the reply within {timeout:g} s", elapsed_ms(started)
            )
        if found is True:
            return ProbeResult.connected(f"got {expect!r}", elapsed_ms(started))
        if found is None:
            return ProbeResult.error(
                f"no {expect!r} in the first {REPLY_LIMIT >> 20} MiB of the reply",
                elapsed_ms(started),
            )
        return ProbeResult.error(
            f"connection closed without {expect!r} in the reply", elapsed_ms(started)
        )


async def _find(reader: asyncio.StreamReader, wanted: bytes) -> bool | None:
    """Read until ``wanted`` is seen (True), the peer closes (False) or REPLY_LIMIT bytes
    came without it (None). Each chunk is searched once, with the last len(wanted) - 1
    bytes before it, so a match split across two reads is found and a peer that streams
    costs the limit, not its speed times the timeout."""
    tail = b""
    seen = 0
    while seen < REPLY_LIMIT:
        chunk = await reader.read(min(READ_SIZE, REPLY_LIMIT - seen))
        if not chunk:
            return False
        seen += len(chunk)
        window = tail + chunk
        if wanted in window:
            return True
        tail = window[-(len(wanted) - 1) :] if len(wanted) > 1 else b""
    return None
