"""The wrapper every APScheduler job body of the daemon runs in."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from healthd.store.writer import Unavailable

log = logging.getLogger("healthd")


def quiet_job(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[None]]:
    """A job body that never leaks a traceback into the logs: the database being down is
    expected (Unavailable), cancellation at shutdown is expected, anything else is one line."""

    @functools.wraps(fn)
    async def wrapper(*args: Any) -> None:
        try:
            await fn(*args)
        except (Unavailable, asyncio.CancelledError):
            pass
        except Exception as exc:  # noqa: BLE001 - a job's failure is one line, never a crash
            log.error("%s failed: %s: %s", fn.__name__, type(exc).__name__, exc)
            log.debug("%s failed", fn.__name__, exc_info=True)

    return wrapper
