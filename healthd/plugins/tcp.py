"""TCP: connect, optionally send a line and expect an answer (PING / +PONG)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from healthd.core.words import CONNECTED
from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms


class TcpPlugin(Plugin):
    name = "tcp"
    description = "TCP connect; optionally send bytes and expect a reply containing some text"
    fields = {
        "host": Field("str", required=True),
        "port": Field("int", required=True),
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
            await writer.drain()
        expect = cfg.get("expect")
        if not expect:
            return ProbeResult.connected(CONNECTED, elapsed_ms(started))
        data = b""
        left = timeout - (time.perf_counter() - started)
        try:
            async with asyncio.timeout(max(left, 0.01)):
                while str(expect).encode() not in data:
                    chunk = await reader.read(4096)
                    if not chunk:
                        break
                    data += chunk
        except TimeoutError:
            return ProbeResult.error(
                f"no {expect!r} in the reply within {timeout:g} s", elapsed_ms(started)
            )
        if str(expect).encode() in data:
            return ProbeResult.connected(f"got {expect!r}", elapsed_ms(started))
        return ProbeResult.error(
            f"connection closed without {expect!r} in the reply", elapsed_ms(started)
        )
