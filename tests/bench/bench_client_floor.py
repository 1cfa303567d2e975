"""The floor under an HTTP probe: CPU per fresh-connection GET of the clients healthd could
use, against the bare libcurl-on-asyncio glue, in one process on uvloop, same nginx.

Run: python tests/bench/bench_client_floor.py [--n 6000] [--rounds 2]
Needs Debian's nginx. Prints GETs/s and CPU (user + system) per GET for:
- the bare floor: libcurl's multi interface driven by the asyncio loop through socket and
  timer callbacks, nothing else (../shared/tools/ceilings/http_floor.py's glue): P15's
  reference;
- healthd's engine (healthd/http/engine.py) alone;
- the http plugin through the guard (plugins.run_check), as the daemon calls it;
- aiohttp configured as the http plugin had it (force_close, no cookie jar, no timer);
- a raw asyncio stream (connect, write a request, read to EOF, close): not an HTTP client
  healthd could use, only the kernel-and-loop floor.
Every libcurl GET is a new TCP connection (FRESH_CONNECT + FORBID_REUSE).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import aiohttp  # noqa: E402
import pycurl  # noqa: E402
import uvloop  # noqa: E402
from _servers import nginx  # noqa: E402

VARIANTS = (
    "bare libcurl on the asyncio loop",
    "healthd engine",
    "http plugin + guard",
    "aiohttp as the plugin had it",
    "raw asyncio stream",
)


class CurlOnLoop:
    """The bare glue: libcurl says which sockets to watch and when to wake it; the loop
    calls socket_action. Nothing healthd adds (no options beyond a fresh connection)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.m = loop, pycurl.CurlMulti()
        self.timer: asyncio.TimerHandle | None = None
        self.futs: dict[Any, asyncio.Future[int]] = {}
        self.fds: dict[int, int] = {}
        self.m.setopt(pycurl.M_SOCKETFUNCTION, self._socket)
        self.m.setopt(pycurl.M_TIMERFUNCTION, self._timer)

    def _socket(self, ev: int, fd: int, multi: object, data: object) -> None:
        old = self.fds.get(fd, 0)
        want = 0 if ev == pycurl.POLL_REMOVE else ev & 3
        if old & 1 and not want & 1:
            self.loop.remove_reader(fd)
        if old & 2 and not want & 2:
            self.loop.remove_writer(fd)
        if want & 1 and not old & 1:
            self.loop.add_reader(fd, self._act, fd, pycurl.CSELECT_IN)
        if want & 2 and not old & 2:
            self.loop.add_writer(fd, self._act, fd, pycurl.CSELECT_OUT)
        if want:
            self.fds[fd] = want
        else:
            self.fds.pop(fd, None)

    def _timer(self, ms: int) -> None:
        if self.timer:
            self.timer.cancel()
            self.timer = None
        if ms >= 0:
            self.timer = self.loop.call_later(ms / 1000, self._act, pycurl.SOCKET_TIMEOUT, 0)

    def _act(self, fd: int, ev: int) -> None:
        while self.m.socket_action(fd, ev)[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        while True:
            queued, ok, err = self.m.info_read()
            for h in ok:
                self.m.remove_handle(h)
                self.futs.pop(h).set_result(h.getinfo(pycurl.RESPONSE_CODE))
            for h, _, msg in err:
                self.m.remove_handle(h)
                self.futs.pop(h).set_exception(OSError(msg))
            if queued == 0:
                break

    async def get(self, h: Any, url: bytes) -> int:
        h.setopt(pycurl.URL, url)
        h.setopt(pycurl.FRESH_CONNECT, 1)
        h.setopt(pycurl.FORBID_REUSE, 1)
        h.setopt(pycurl.WRITEFUNCTION, lambda b: None)
        h.setopt(pycurl.TIMEOUT_MS, 10000)
        self.futs[h] = fut = self.loop.create_future()
        self.m.add_handle(h)
        return await fut


async def variant(port: int, name: str, n: int, conc: int = 200) -> tuple[float, float]:
    """(GETs/s, CPU µs per GET) of one client, ``n`` GETs with ``conc`` in flight."""
    sem = asyncio.Semaphore(conc)
    url = f"http://127.0.0.1:{port}/"
    one: Any
    closing: list[Any] = []
    if name == "bare libcurl on the asyncio loop":
        cl = CurlOnLoop(asyncio.get_running_loop())
        pool = [pycurl.Curl() for _ in range(conc)]

        async def one() -> None:
            h = pool.pop()
            try:
                assert await cl.get(h, url.encode()) == 200
            finally:
                pool.append(h)

    elif name == "healthd engine":
        from healthd import http

        async def one() -> None:
            assert (await http.request(url, timeout=10.0)).status == 200

        closing.append(http.close_engine)
    elif name == "http plugin + guard":
        from healthd import plugins
        from healthd.plugins import httpclient

        plugin = plugins.create("http", {"url": url})

        async def one() -> None:
            assert (await plugins.run_check(plugin, 10.0)).ok

        closing.append(httpclient.close_session)
    elif name == "aiohttp as the plugin had it":
        conn = aiohttp.TCPConnector(force_close=True, limit=0, ttl_dns_cache=10)
        s = aiohttp.ClientSession(
            connector=conn,
            trust_env=False,
            headers={"User-Agent": "healthd"},
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        untimed = aiohttp.ClientTimeout()

        async def one() -> None:
            async with s.get(url, allow_redirects=False, timeout=untimed) as resp:
                assert resp.status == 200

        closing.append(s.close)
    else:

        async def one() -> None:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            await r.read()
            w.close()

    async def gated() -> None:
        async with sem:
            await one()

    t, c = time.perf_counter(), time.process_time()
    await asyncio.gather(*(gated() for _ in range(n)))
    out = n / (time.perf_counter() - t), (time.process_time() - c) / n * 1e6
    for close in closing:
        await close()
    return out


async def main(port: int, n: int, rounds: int, only: list[str]) -> None:
    print("| client | GETs/s | CPU µs per GET |\n|---|---|---|")
    for _ in range(rounds):
        for name in only or VARIANTS:
            rate, us = await variant(port, name, n)
            print(f"| {name} | {rate:,.0f} | {us:,.0f} |", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated variant names")
    args = ap.parse_args()
    with nginx(workers=1) as port:
        uvloop.run(main(port, args.n, args.rounds, [x for x in args.only.split(",") if x]))
