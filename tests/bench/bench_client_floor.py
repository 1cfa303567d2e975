"""The floor under an HTTP probe: what aiohttp costs per fresh connection, against a raw
asyncio connect + GET + close, in one process on uvloop, at the same nginx.

Run: python tests/bench/bench_client_floor.py [--n 6000] [--rounds 2]
Needs Debian's nginx. Prints GETs/s and CPU (user + system) per GET for:
- aiohttp configured as healthd's http plugin (force_close, no cookie jar, no timer);
- the same with aiohttp's default cookie jar (what healthd used before);
- a raw asyncio stream (connect, write a request, read to EOF, close): not an HTTP client
  healthd could use (no parsing, no TLS, no redirects), only the kernel-and-loop floor.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import aiohttp  # noqa: E402
import uvloop  # noqa: E402
from _servers import nginx  # noqa: E402


async def variant(port: int, name: str, n: int, conc: int = 200) -> tuple[float, float]:
    sem = asyncio.Semaphore(conc)
    jar = aiohttp.CookieJar() if name == "aiohttp, default cookie jar" else None
    conn = aiohttp.TCPConnector(force_close=True, limit=0, ttl_dns_cache=10)
    async with aiohttp.ClientSession(
        connector=conn,
        trust_env=False,
        headers={"User-Agent": "healthd"},
        cookie_jar=jar or aiohttp.DummyCookieJar(),
    ) as s:
        url = f"http://127.0.0.1:{port}/"
        untimed = aiohttp.ClientTimeout()

        async def one() -> None:
            async with sem:
                if name == "raw asyncio stream":
                    r, w = await asyncio.open_connection("127.0.0.1", port)
                    w.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    await r.read()
                    w.close()
                    return
                async with s.get(url, allow_redirects=False, timeout=untimed) as resp:
                    assert resp.status == 200

        t, c = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - t), (time.process_time() - c) / n * 1e6


async def main(port: int, n: int, rounds: int) -> None:
    print("| client | GETs/s | CPU µs per GET |\n|---|---|---|")
    for _ in range(rounds):
        for name in ("aiohttp as healthd", "aiohttp, default cookie jar", "raw asyncio stream"):
            rate, us = await variant(port, name, n)
            print(f"| {name} | {rate:,.0f} | {us:,.0f} |", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with nginx(workers=1) as port:
        uvloop.run(main(port, args.n, args.rounds))
