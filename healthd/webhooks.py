"""The outbox sender: sign, POST, back off; at least once, across restarts.

A delivery is retried with exponential backoff and full jitter until the receiver
answers 2xx, or MAX_ATTEMPTS have failed (about 5 hours of trying), after which it is
marked given up (`healthd webhooks list` counts those).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from typing import Any

import aiohttp

from healthd.plugins import httpclient
from healthd.secrets import SecretError, resolve, safe_url
from healthd.selfmetrics import SelfMetrics
from healthd.store import Store, Unavailable

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 15
BASE_DELAY = 2.0
MAX_DELAY = 3600.0
POST_TIMEOUT = 10.0
BATCH = 100


def backoff(attempts: int, rng: random.Random | None = None) -> float:
    """Delay before the next try after ``attempts`` failures: exponential, capped, jittered
    between half and the whole step so receivers coming back are not stampeded."""
    step = min(MAX_DELAY, BASE_DELAY * 2 ** max(attempts - 1, 0))
    return float(step * (0.5 + (rng or random).random() * 0.5))


def body_of(payload: dict[str, Any]) -> bytes:
    # canonical: the same bytes (and so the same signature) on every retry
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Sender:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.wake = asyncio.Event()
        self.metrics: SelfMetrics | None = None

    async def run_once(self) -> int:
        """Send what is due; return how many were attempted."""
        try:
            due = await self.store.claim_deliveries(BATCH, lease_s=POST_TIMEOUT * 3)
        except Unavailable:
            return 0
        if due:
            await asyncio.gather(*(self._deliver(d) for d in due))
        return len(due)

    async def _deliver(self, d: dict[str, Any]) -> None:
        error = await self._post(d)
        try:
            if error is None:
                await self.store.delivery_done(d["id"])
                self._count("delivered")
                return
            give_up = d["attempts"] >= MAX_ATTEMPTS
            self._count("given_up" if give_up else "failed")
            retry = None if give_up else backoff(d["attempts"])
            await self.store.delivery_failed(d["id"], error, retry)
            where = safe_url(d["url"])
            if give_up:
                log.error(
                    "webhook %s: gave up on delivery %s after %d attempts: %s",
                    where,
                    d["delivery_id"],
                    d["attempts"],
                    error,
                )
            elif d["attempts"] == 1:
                log.warning("webhook %s: delivery failed (%s); retrying with backoff", where, error)
        except Unavailable:
            pass  # the lease expires and the delivery is tried again: at least once

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.delivery(outcome)

    async def _post(self, d: dict[str, Any]) -> str | None:
        body = body_of(d["payload"])
        headers = {
            "Content-Type": "application/json",
            "X-Healthd-Event": d["event"],
            "X-Healthd-Delivery": str(d["delivery_id"]),
        }
        if d["secret_ref"]:
            try:
                headers["X-Healthd-Signature"] = signature(str(resolve(d["secret_ref"])), body)
            except SecretError as exc:
                return str(exc)
        try:
            async with httpclient.session().post(
                d["url"],
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT),
            ) as resp:
                if 200 <= resp.status < 300:
                    return None
                return f"HTTP {resp.status}"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return httpclient.describe_error(exc, d["url"], POST_TIMEOUT)[1]
