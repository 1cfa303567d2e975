"""TLS: a handshake that verifies the server's certificate and reads how long it has left.

Only the standard ``ssl`` module. A certificate that fails verification is read again
through a second, unverified handshake, only for its expiry date, so the message of an
expired or untrusted certificate can still say when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from datetime import UTC, datetime
from typing import Any

from healthd.plugins.base import PORTS, Field, Plugin, ProbeResult, elapsed_ms

# OpenSSL's X509_V_ERR_CERT_HAS_EXPIRED
_EXPIRED = 10


class TlsPlugin(Plugin):
    name = "tls"
    description = "TLS certificate: verified, for the right name, with more than min_days left"
    fields = {
        "host": Field("str", required=True),
        "port": Field("int", default=443, bounds=PORTS),
        "server_name": Field("str", help="the name sent (SNI) and checked; default host"),
        "ca_file": Field("str", help="CA bundle to verify against (default: the system's)"),
        "min_days": Field("float", default=14, help="error when fewer days are left"),
    }

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        host, port = cfg["host"], cfg["port"]
        name = cfg.get("server_name") or host
        where = f"{host}:{port}"
        started = time.perf_counter()
        try:
            ctx = ssl.create_default_context(cafile=cfg.get("ca_file"))
        except (OSError, ssl.SSLError) as exc:
            return ProbeResult.error(f"cannot read ca_file: {exc.strerror or exc}")
        try:
            async with asyncio.timeout(timeout):
                der = await _handshake(host, port, name, ctx)
        except ssl.SSLCertVerificationError as exc:
            return await self._refused(exc, cfg, started, max(timeout / 2, 0.5))
        except TimeoutError:
            return ProbeResult.disconnected(f"timed out after {timeout:g} s ({where})")
        except ssl.SSLError as exc:
            reason = (exc.reason or type(exc).__name__).lower().replace("_", " ")
            return ProbeResult.error(
                f"TLS handshake failed: {reason} ({where})", elapsed_ms(started)
            )
        except OSError as exc:
            return ProbeResult.disconnected(f"{_os_reason(exc)} ({where})", elapsed_ms(started))
        return _judge(not_after(der), cfg["min_days"], name, elapsed_ms(started))

    async def _refused(
        self, exc: ssl.SSLCertVerificationError, cfg: dict[str, Any], started: float, left: float
    ) -> ProbeResult:
        """A certificate that did not verify: say why, and when it ends if it can be read."""
        latency = elapsed_ms(started)
        expires = None
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(left):
                der = await _handshake(
                    cfg["host"], cfg["port"], cfg.get("server_name") or cfg["host"], _unverified()
                )
            expires = not_after(der)
        if exc.verify_code == _EXPIRED and expires is not None:
            ago = (_now() - expires).total_seconds() / 86400
            return ProbeResult.error(
                f"certificate expired {ago:.1f} days ago ({expires:%Y-%m-%d})", latency
            )
        reason = str(exc.verify_message or exc.reason or "verification failed").rstrip(".")
        until = ""
        if expires is not None:
            days = (expires - _now()).total_seconds() / 86400
            until = (
                f"; it expires in {days:.1f} days ({expires:%Y-%m-%d})"
                if days >= 0
                else f"; it expired {-days:.1f} days ago ({expires:%Y-%m-%d})"
            )
        return ProbeResult.error(f"certificate not accepted: {reason}{until}", latency)


async def _handshake(host: str, port: int, name: str, ctx: ssl.SSLContext) -> bytes:
    """The server's certificate (DER) after a complete handshake; the connection is
    dropped straight after."""
    _, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=name)
    try:
        sslobj = writer.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        return der or b""
    finally:
        # abort, not close: a graceful close waits for the server's close_notify, which a
        # server waiting for its own protocol's first words may send late or never
        writer.transport.abort()


def _unverified() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _judge(expires: datetime | None, min_days: float, name: str, latency: float) -> ProbeResult:
    if expires is None:
        return ProbeResult.error("the certificate's expiry date cannot be read", latency)
    days = (expires - _now()).total_seconds() / 86400
    when = f"{days:.1f} days ({expires:%Y-%m-%d})"
    if days < min_days:
        return ProbeResult.error(
            f"certificate for {name} expires in {when}, under min_days {min_days:g}", latency
        )
    return ProbeResult.connected(f"certificate for {name} valid, expires in {when}", latency)


def _now() -> datetime:
    return datetime.now(UTC)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset during the handshake"
    return (exc.strerror or type(exc).__name__).lower()


# -- the one field of a certificate read by hand ----------------------------------------
# The standard library parses a certificate only after verifying it (getpeercert()); an
# untrusted or expired one comes back as DER bytes. Its notAfter sits at a fixed place:
# Certificate = SEQUENCE { tbs SEQUENCE { [0] version?, serial, signature, issuer,
# validity SEQUENCE { notBefore, notAfter }, ... } }.


def not_after(der: bytes) -> datetime | None:
    """The notAfter of a DER certificate, or None if it cannot be read."""
    try:
        tbs, _ = _inner(der, 0)  # into Certificate
        pos, _ = _inner(der, tbs)  # into TBSCertificate
        if der[pos] == 0xA0:  # explicit [0] version
            pos = _skip(der, pos)
        for _ in range(3):  # serialNumber, signature, issuer
            pos = _skip(der, pos)
        validity, _ = _inner(der, pos)
        after = _skip(der, validity)  # past notBefore
        start, end = _inner(der, after)
        return _asn1_time(der[after], der[start:end].decode("ascii"))
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def _inner(der: bytes, pos: int) -> tuple[int, int]:
    """(start, end) of the content of the element at ``pos``."""
    length = der[pos + 1]
    start = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise ValueError("bad length")
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    if start + length > len(der):
        raise ValueError("truncated")
    return start, start + length


def _skip(der: bytes, pos: int) -> int:
    return _inner(der, pos)[1]


def _asn1_time(tag: int, text: str) -> datetime:
    if tag == 0x17:  # UTCTime, YYMMDDHHMMSSZ: years 1950-2049
        parsed = datetime.strptime(text, "%y%m%d%H%M%SZ")
        if parsed.year >= 2050:
            parsed = parsed.replace(year=parsed.year - 100)
    elif tag == 0x18:  # GeneralizedTime, YYYYMMDDHHMMSSZ
        parsed = datetime.strptime(text, "%Y%m%d%H%M%SZ")
    else:
        raise ValueError("not a time")
    return parsed.replace(tzinfo=UTC)
