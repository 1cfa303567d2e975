"""SMTP: the greeting, EHLO, and optionally STARTTLS with a verified certificate, then
QUIT. No mail is sent. aiosmtplib reads the multi-line replies and upgrades to TLS."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from typing import Any

import aiosmtplib

from healthd.plugins.base import PORTS, Field, Plugin, ProbeResult, elapsed_ms


class SmtpPlugin(Plugin):
    name = "smtp"
    description = "SMTP: a 220 greeting and an answered EHLO; optionally STARTTLS, verified"
    fields = {
        "host": Field("str", required=True),
        "port": Field("int", default=25, bounds=PORTS),
        "starttls": Field("bool", default=False, help="upgrade with STARTTLS and verify"),
        "ca_file": Field("str", help="CA bundle for the STARTTLS certificate"),
    }

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        where = f"{cfg['host']}:{cfg['port']}"
        started = time.perf_counter()
        client = aiosmtplib.SMTP(
            hostname=cfg["host"],
            port=cfg["port"],
            timeout=timeout,
            start_tls=False,  # never on its own (aiosmtplib would on port 587): see below
            local_hostname="healthd.localdomain",
        )
        try:
            greeting = await client.connect()
            await client.ehlo()
            if cfg["starttls"]:
                await self._starttls(client, cfg)
            outcome = "STARTTLS and EHLO answered" if cfg["starttls"] else "EHLO answered"
            said = f"{greeting.code} {_first(greeting.message)}".strip()
            return ProbeResult.connected(f"{said}; {outcome}", elapsed_ms(started))
        except _StartTlsRefused as exc:
            return ProbeResult.error(f"{exc} ({where})", elapsed_ms(started))
        except aiosmtplib.SMTPResponseException as exc:
            step = "greeting" if isinstance(exc, aiosmtplib.SMTPConnectResponseError) else "reply"
            return ProbeResult.error(
                f"{step} {exc.code} {_first(exc.message)} ({where})", elapsed_ms(started)
            )
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            return ProbeResult.disconnected(f"timed out after {timeout:g} s ({where})")
        except aiosmtplib.SMTPServerDisconnected:
            return ProbeResult.disconnected(
                f"the server closed the connection ({where})", elapsed_ms(started)
            )
        except (aiosmtplib.SMTPConnectError, OSError) as exc:
            return ProbeResult.disconnected(f"{_reason(exc)} ({where})", elapsed_ms(started))
        finally:
            await _hang_up(client)

    async def _starttls(self, client: aiosmtplib.SMTP, cfg: dict[str, Any]) -> None:
        if not client.supports_extension("starttls"):
            raise _StartTlsRefused("STARTTLS is not offered")
        try:
            ctx = ssl.create_default_context(cafile=cfg.get("ca_file"))
        except (OSError, ssl.SSLError) as exc:
            raise _StartTlsRefused("cannot read ca_file") from exc
        try:
            await client.starttls(tls_context=ctx, server_hostname=cfg["host"])
        except ssl.SSLCertVerificationError as exc:
            reason = str(exc.verify_message or exc.reason).rstrip(".")
            raise _StartTlsRefused(f"STARTTLS certificate not accepted: {reason}") from exc
        except ssl.SSLError as exc:
            raise _StartTlsRefused(f"STARTTLS handshake failed: {exc.reason}") from exc
        await client.ehlo()


async def _hang_up(client: aiosmtplib.SMTP) -> None:
    """QUIT, then drop the connection at once: a TLS connection's close() waits for the
    server's close_notify in the background (up to 30 s), holding the socket after the
    probe has ended; abort() releases it now (the QUIT was answered, nothing is lost)."""
    transport = client.transport
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
        if client.is_connected:
            await client.quit(timeout=1)
    client.close()
    if isinstance(transport, asyncio.Transport):
        transport.abort()


class _StartTlsRefused(Exception):
    """STARTTLS was asked for and could not be had: the server answered, wrongly."""


def _first(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else ""


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    for e in (exc, cause):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return _first(str(exc)) or type(exc).__name__
