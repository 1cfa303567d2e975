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
from healthd.core.words import ERROR
from healthd.plugins.base import STATUSES, Plugin, ProbeResult

log = logging.getLogger("healthd.plugins.base")


async def run_check(plugin: Plugin, timeout: float) -> ProbeResult:
    """Run one check with the guarantees the daemon relies on: a hard timeout, no
    exception escapes, and no secret survives in the message."""
    started = time.perf_counter()
    secrets: list[str] = []
    loop = asyncio.get_running_loop()
    # the plugin applies `timeout` itself; this is the backstop for one that does not: one
    # loop timer that cancels the task (what asyncio.timeout does, at a third of its cost
    # per probe, which every probe pays)
    backstop = _Backstop(asyncio.current_task())
    timer = loop.call_at(loop.time() + timeout + 1.0, backstop)
    try:
        secrets = plugin.probe_secrets()
        result = await plugin.check(timeout)
    except asyncio.CancelledError:
        if not backstop.settle():
            raise  # cancelled from outside (a shutdown), not (only) by the backstop
        result = ProbeResult.disconnected(f"timed out after {timeout:g} s")
    except SecretError as exc:
        result = ProbeResult.error(str(exc))
    except TimeoutError:
        result = ProbeResult.disconnected(f"timed out after {timeout:g} s")
    except Exception as exc:  # a plugin bug must fail only its own source
        log.debug("plugin %s raised", plugin.name, exc_info=True)
        result = ProbeResult.error(f"plugin {plugin.name} failed: {type(exc).__name__}: {exc}")
    finally:
        timer.cancel()
        backstop.settle()  # a plugin that swallowed the cancellation: take it back
    return sanitised(result, plugin.name, secrets, started)


class _Backstop:
    """Cancels the probe's task when its time plus a second is up, and remembers it did."""

    __slots__ = ("fired", "task")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.fired = False

    def __call__(self) -> None:
        if self.task is not None:
            self.fired = True
            self.task.cancel()

    def settle(self) -> bool:
        """Take back the backstop's cancellation (once); True if nothing else asked for
        one, so the CancelledError was the backstop's alone."""
        if not self.fired or self.task is None:
            return False
        self.fired = False
        return self.task.uncancel() == 0


MAX_MESSAGE = 2000  # characters of a probe message kept (a command can print megabytes)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str, limit: int = MAX_MESSAGE) -> str:
    """Text PostgreSQL and JSON can store: NUL and lone surrogates (which no UTF-8 can
    carry) become U+FFFD, and it is cut to ``limit`` characters."""
    text = _UNSTORABLE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


_INF = math.inf


def _fit(result: ProbeResult, secrets: Sequence[str]) -> bool:
    """True when ``result`` is already what sanitised() would make of it: a plain
    ProbeResult with a known status, a finite latency, valid phases and a short message in
    which neither a secret nor anything a URL pattern could match appears."""
    msg, lat, ph = result.message, result.latency_ms, result.phases
    return (
        type(result) is ProbeResult
        and type(msg) is str
        and len(msg) <= MAX_MESSAGE
        and result.status in STATUSES
        and type(lat) is float
        and 0 <= lat < _INF
        and type(result.reconnected) is bool
        and (ph is None or phases.checked(ph) is ph)
        and "://" not in msg
        and "=" not in msg
        and not any(x in msg for x in secrets)
        and _UNSTORABLE.search(msg) is None
    )


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
    if _fit(result, secrets):
        return result  # nearly every result: nothing to change, so nothing is rebuilt
    status, message = result.status, result.message
    if not isinstance(message, str):
        message = "" if message is None else repr(message)
    if status not in STATUSES:
        message = f"plugin {plugin_name} returned an unknown status {str(status)[:40]!r}"
        status = ERROR
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
