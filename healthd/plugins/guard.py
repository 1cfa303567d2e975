"""What the daemon guarantees around every ``check()``: a hard timeout, no exception
escapes, and no secret survives in the message."""

from __future__ import annotations

import asyncio
import logging
import time

from healthd.plugins.base import Plugin, ProbeResult
from healthd.secrets import SecretError, scrub

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
    message = scrub(result.message, secrets)
    latency = result.latency_ms
    if latency is not None and message is result.message:
        return result  # the common case: nothing to change, nothing to allocate
    if latency is None:
        latency = round((time.perf_counter() - started) * 1000, 2)
    return ProbeResult(result.status, message, latency, result.reconnected)
