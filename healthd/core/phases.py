"""The phases of one HTTP exchange, named as blackbox_exporter names them in
``probe_http_duration_seconds{phase=...}``: resolve, connect, tls, processing, transfer.

Pure: the daemon (rollups, its own metrics), the API (the latency figures) and the CLI
agree on the names and the order here. Times are milliseconds, like
``ProbeResult.latency_ms``.

What each phase spans, from libcurl's cumulative timers (healthd/http/engine.py reads them):

- ``resolve``: the name lookup (NAMELOOKUP_TIME; near 0 for an IP address);
- ``connect``: the TCP handshake (CONNECT_TIME - NAMELOOKUP_TIME);
- ``tls``: the TLS handshake (APPCONNECT_TIME - CONNECT_TIME; 0 for plain HTTP);
- ``processing``: from the connection being ready to the first byte of the answer:
  sending the request and the server's think time (STARTTRANSFER_TIME - the end of the
  handshake);
- ``transfer``: from the first byte to the last one read (TOTAL_TIME - STARTTRANSFER_TIME).

With redirects, each hop's phases are added up, as blackbox_exporter does.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

NAMES: tuple[str, ...] = ("resolve", "connect", "tls", "processing", "transfer")


class Phases(NamedTuple):
    """Milliseconds spent in each phase of one probe (all hops together)."""

    resolve: float
    connect: float
    tls: float
    processing: float
    transfer: float

    @property
    def total_ms(self) -> float:
        return self.resolve + self.connect + self.tls + self.processing + self.transfer

    def plus(self, other: Phases) -> Phases:
        """This hop and the next one added up (a redirect)."""
        return Phases(*(a + b for a, b in zip(self, other, strict=True)))

    def as_dict(self) -> dict[str, float]:
        """``{"resolve_ms": ..., ...}``: the API's and the CLI's spelling."""
        return {f"{n}_ms": round(v, 3) for n, v in zip(NAMES, self, strict=True)}


def from_curl(
    namelookup_us: int,
    connect_us: int,
    appconnect_us: int,
    starttransfer_us: int,
    total_us: int,
) -> Phases:
    """The phases from libcurl's cumulative timers (microseconds since the transfer
    started; a timer the transfer never reached is 0). Clamped so no phase is negative:
    a phase that did not happen (no TLS, no answer) counts 0, and the next one starts
    where the last one reached ended."""
    dns = max(0, namelookup_us)
    conn = max(dns, connect_us)
    tls_end = max(conn, appconnect_us)
    first = max(tls_end, starttransfer_us) if starttransfer_us else tls_end
    end = max(first, total_us)
    return Phases(
        dns / 1000,
        (conn - dns) / 1000,
        (tls_end - conn) / 1000,
        (first - tls_end) / 1000,
        (end - first) / 1000,
    )


def checked(value: Any) -> Phases | None:
    """``value`` if it is five finite, non-negative numbers (what a third-party plugin
    hands back is not trusted), else None."""
    if value is None:
        return None
    if type(value) is Phases:
        # one pass in C: a NaN or an infinity makes the sum NaN or infinite
        total = sum(value)
        return value if total == total and total != math.inf and min(value) >= 0 else None
    try:
        items = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    if len(items) != len(NAMES) or not all(math.isfinite(v) and v >= 0 for v in items):
        return None
    return value if isinstance(value, Phases) else Phases(*items)
