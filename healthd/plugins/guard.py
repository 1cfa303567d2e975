"""What the daemon guarantees around every ``check()``: a hard timeout, no exception
escapes, and what comes back is fit to store: no secret, no NUL or lone surrogate, a
bounded message, a known status. This is the one place probe results are built."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Sequence
from typing import Any

from healthd.core import phases
from healthd.core.secrets import SecretError, scrub
from healthd.plugins.base import STATUSES, Plugin, ProbeResult

log = logging.getLogger("healthd.plugins.base")


async def run_check(plugin: Plugin, timeout: float) -> ProbeResult:
    """Run one check with the guarantees the daemon relies on: a hard timeout, no
    exception escapes, and no secret survives in the message."""
    started = time.perf_counter()
    secrets: list[str] = []
    try:
        secrets = plugin.probe_secrets()
        # the plugin applies `timeout` itself; this is the backstop for one that does not
        async with asyncio.timeout(timeout + 1.0):
            result = await plugin.check(timeout)
    except SecretError as exc:
        result = ProbeResult.error(str(exc))
    except TimeoutError:
        result = ProbeResult.disconnected(f"timed out after {timeout:g} s")
    except Exception as exc:  # a plugin bug must fail only its own source
        log.debug("plugin %s raised", plugin.name, exc_info=True)
        result = ProbeResult.error(f"plugin {plugin.name} failed: {type(exc).__name__}: {exc}")
    return sanitised(result, plugin.name, secrets, started)


MAX_MESSAGE = 2000  # characters of a probe message kept (a command can print megabytes)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str, limit: int = MAX_MESSAGE) -> str:
    """Text PostgreSQL and JSON can store: NUL and lone surrogates (which no UTF-8 can
    carry) become U+FFFD, and it is cut to ``limit`` characters."""
    text = _UNSTORABLE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def sanitised(
    result: Any, plugin_name: str, secrets: Sequence[str] = (), started: float | None = None
) -> ProbeResult:
    """Everything a plugin hands back, made fit to store: a known status, a finite
    latency, a message without secrets, NUL or lone surrogates, of bounded length. A
    third-party plugin returning something else fails only its own source."""
    if not isinstance(result, ProbeResult):
        return ProbeResult.error(
            f"plugin {plugin_name} returned {type(result).__name__}, not a ProbeResult"
        )
    status, message = result.status, result.message
    if not isinstance(message, str):
        message = "" if message is None else repr(message)
    if status not in STATUSES:
        message = f"plugin {plugin_name} returned an unknown status {str(status)[:40]!r}"
        status = "error"
    latency = result.latency_ms
    if not isinstance(latency, int | float) or not math.isfinite(latency) or latency < 0:
        latency = None
    if latency is None and started is not None:
        latency = round((time.perf_counter() - started) * 1000, 2)
    # cut before scrubbing (the URL patterns are slow on megabytes), but far enough out
    # that a secret or URL credentials crossing MAX_MESSAGE are still whole, so scrubbed
    message = message[: MAX_MESSAGE + max((len(x) for x in secrets), default=0) + 256]
    return ProbeResult(
        status,
        clean_text(scrub(message, list(secrets))),
        latency,
        bool(result.reconnected),
        phases.checked(result.phases),
    )
