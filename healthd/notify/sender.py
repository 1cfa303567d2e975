"""The outbox sender: sign, POST, back off; at least once, across restarts. What goes on
the wire is the target's format's (healthd/notify/formats.py): an HTTP POST, or a message
sent by Apprise (healthd/notify/apprise_target.py). ``attempt`` is one attempt at one
target, shared with `healthd notifications test`.

A delivery is retried with exponential backoff and jitter until the receiver answers
2xx, or MAX_ATTEMPTS have failed (2 h 4 min to 4 h 8 min of waiting between them, see
total_backoff), after which it is marked given up (`healthd webhooks list` counts those).
A permanent refusal (a 4xx other than 408, 425 and 429: the receiver read the request and
will not take it, as Alertmanager's 400 for a body it cannot parse) is given up after
PERMANENT_ATTEMPTS instead, with the receiver's answer in the delivery log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any, NamedTuple

from healthd.core.secrets import SecretError, resolve, safe_url
from healthd.core.selfmetrics import SelfMetrics
from healthd.http import CurlError
from healthd.notify import apprise_target, formats, message
from healthd.notify.urls import by_reference, origin, without_path
from healthd.plugins import httpclient
from healthd.store.facade import Store
from healthd.store.writer import Unavailable

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 15
# a 4xx but these three is the same answer on every retry; a few attempts (2 s and 4 s
# apart) ride out a receiver that refused for a moment while it was being redeployed
PERMANENT_ATTEMPTS = 3
TRANSIENT_4XX = frozenset({408, 425, 429})  # timeout, too early, slow down: try again
ANSWER_CHARS = 200  # how much of a refusal's body the delivery log keeps
BASE_DELAY = 2.0
MAX_DELAY = 3600.0
POST_TIMEOUT = 10.0
BATCH = 100  # deliveries claimed at most in one round
# attempts at one target at once: its batch, claimed together and sent side by side (so
# they all end within one lease); its next batch is claimed when this one is done
PER_TARGET = 10


def backoff(attempts: int, rng: random.Random | None = None) -> float:
    """Delay before the next try after ``attempts`` failures: exponential, capped, jittered
    between half and the whole step so receivers coming back are not stampeded."""
    step = min(MAX_DELAY, BASE_DELAY * 2 ** max(attempts - 1, 0))
    return float(step * (0.5 + (rng or random).random() * 0.5))


def total_backoff() -> tuple[float, float]:
    """(shortest, longest) total wait between the first attempt and giving up."""
    steps = [min(MAX_DELAY, BASE_DELAY * 2 ** max(a - 1, 0)) for a in range(1, MAX_ATTEMPTS)]
    return sum(steps) * 0.5, float(sum(steps))


def permanent(status: int | None) -> bool:
    """Whether an answer is a refusal that retrying will not change."""
    return status is not None and 400 <= status < 500 and status not in TRANSIENT_4XX


def gives_up(attempts: int, status: int | None) -> bool:
    """After ``attempts`` failed, the last answered with ``status`` (None: no answer)."""
    limit = PERMANENT_ATTEMPTS if permanent(status) else MAX_ATTEMPTS
    return attempts >= limit


def answer_text(body: bytes) -> str:
    """The start of a receiver's answer as one line of printable text."""
    text = body[: ANSWER_CHARS * 4].decode("utf-8", "replace")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text[:ANSWER_CHARS] + ("…" if len(text) > ANSWER_CHARS else "")


def request_for(d: dict[str, Any], now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt at delivery ``d`` in its webhook's format
    (healthd/notify/formats.py). Raises SecretError or ValueError when the webhook's secret
    cannot be used."""
    fmt = formats.get(d.get("format"))
    body = fmt.body(d["event"], d["payload"])
    secret = str(resolve(d["secret_ref"])) if d["secret_ref"] else None
    at = time.time() if now is None else now
    return body, fmt.headers(str(d["delivery_id"]), d["event"], body, secret, at)


class Answer(NamedTuple):
    """What became of one attempt: ``error`` is None when the target accepted it; ``text``
    is what it answered (both fit to show: no URL path, nothing of a URL by reference)."""

    error: str | None
    status: int | None  # the HTTP status, when an HTTP receiver answered
    text: str


def target_url(d: dict[str, Any]) -> str:
    """The target's URL: inline, or read now from its reference (raises SecretError)."""
    if d.get("url_ref"):
        return str(resolve(d["url_ref"])).strip()
    return str(d["url"])


def _shown(text: str, d: dict[str, Any], url: str) -> str:
    """``text`` about ``url`` as it may be stored, logged and printed."""
    if not d.get("url_ref"):
        return without_path(text, url)
    where = by_reference(d["url_ref"])
    for form in (url, safe_url(url), origin(url)):
        text = text.replace(form, where)
    return apprise_target.scrub(text, url)


async def attempt(
    d: dict[str, Any], public_url: str | None = None, timeout: float = POST_TIMEOUT
) -> Answer:
    """One attempt at delivery ``d`` (an outbox row joined with its target)."""
    try:
        url = target_url(d)
    except SecretError as exc:
        return Answer(str(exc), None, str(exc))
    fmt = formats.get(d.get("format"))
    if fmt.transport == "apprise":
        if url.startswith(("http://", "https://")):
            err = "an http(s) URL is a webhook: give it a webhook format, or use json://"
            return Answer(err, None, err)
        msg = message.compose(d["payload"], public_url)
        kind = apprise_target.notify_type(d["payload"])
        out = await apprise_target.send(url, msg, kind, timeout)
        text = _shown(out.answer, d, url)
        return Answer(None if out.ok else text, None, text)
    answer = await _http(d, url, timeout)
    return answer._replace(
        error=None if answer.error is None else _shown(answer.error, d, url),
        text=_shown(answer.text, d, url),
    )


async def _http(d: dict[str, Any], url: str, timeout: float) -> Answer:
    try:
        body, headers = request_for(d)
    except (SecretError, ValueError) as exc:
        return Answer(str(exc), None, str(exc))
    if not url.startswith(("http://", "https://")):
        err = "a webhook URL must start with http:// or https://"
        return Answer(err, None, err)
    try:
        # libcurl, as the probes (healthd/http/engine.py): a fresh connection, no proxy from
        # the environment, no cookies; and no redirect followed: following a 301/302 turns
        # the POST into a GET without the body, and the event would count as delivered
        resp, _, _ = await httpclient.fetch(
            url,
            timeout,
            method="POST",
            headers=headers,
            follow=False,
            body=body,
            keep_body=True,
            body_limit=ANSWER_CHARS * 4,
        )
    except ValueError as exc:  # a header that would break the request apart
        return Answer(str(exc), None, str(exc))
    except (TimeoutError, CurlError) as exc:
        err = httpclient.describe_error(exc, url, timeout)[1]
        return Answer(err, None, err)
    said = f"HTTP {resp.status}"
    if 200 <= resp.status < 300:
        return Answer(None, resp.status, said)
    if 300 <= resp.status < 400:
        said += " (a redirect: not followed; use the final URL)"
        return Answer(said, resp.status, said)
    # the receiver's own words (Alertmanager's, Slack's "invalid_payload") say why; the
    # delivery log shows them beside the status
    answer = answer_text(resp.body)
    if answer:
        said += f": {answer}"
    return Answer(said, resp.status, said)


class Sender:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.wake = asyncio.Event()
        self.metrics: SelfMetrics | None = None
        # the status page's address, for the link in a person's message (HEALTHD_PUBLIC_URL)
        self.public_url: str | None = None
        # each target's batch in flight, by webhook id: a receiver that never answers holds
        # its own batch for POST_TIMEOUT, never another target's deliveries nor the claim
        self._batches: dict[int, asyncio.Task[None]] = {}

    async def run_once(self, wait: bool = True) -> int:
        """Claim what is due and start it, one batch per target (none for a target whose
        batch is still in flight: its deliveries go in order, PER_TARGET at a time); return
        how many were claimed. With ``wait`` (`healthd` commands, tests), when this round's
        batches are done; without (the daemon's webhook_waker), at once."""
        try:
            due = await self.store.claim_deliveries(
                BATCH, lease_s=POST_TIMEOUT * 3, per_target=PER_TARGET, busy=sorted(self._batches)
            )
        except Unavailable:
            return 0
        by_target: dict[int, list[dict[str, Any]]] = {}
        for d in due:
            by_target.setdefault(d["webhook_id"], [])
            if d["id"] is not None:  # None: the target leased with nothing claimed
                by_target[d["webhook_id"]].append(d)
        started = [self._start(target, batch, due) for target, batch in by_target.items()]
        if wait and started:
            await asyncio.gather(*started)
        return sum(1 for d in due if d["id"] is not None)

    def _start(
        self, target: int, batch: list[dict[str, Any]], due: list[dict[str, Any]]
    ) -> asyncio.Task[None]:
        lease = next(d.get("busy_until") for d in due if d["webhook_id"] == target)

        async def send() -> None:
            await asyncio.gather(*(self._deliver(d) for d in batch))
            # every daemon may claim its next batch now (else when the lease runs out)
            with contextlib.suppress(Unavailable):
                await self.store.release_target(target, lease)

        task = asyncio.ensure_future(send())
        self._batches[target] = task

        def done(_: asyncio.Task[None]) -> None:
            self._batches.pop(target, None)
            self.wake.set()  # its next batch, if one is due, is claimed now

        task.add_done_callback(done)
        return task

    async def cancel(self) -> None:
        """At stop: end the attempts in flight (their leases expire and they are tried
        again: at least once)."""
        batches = list(self._batches.values())
        for task in batches:
            task.cancel()
        await asyncio.gather(*batches, return_exceptions=True)

    async def _deliver(self, d: dict[str, Any]) -> None:
        error = await self._post(d)
        if error is not None:
            error = without_path(error, d["url"])
        try:
            if error is None:
                await self.store.delivery_done(d["id"], d.get("last_status"))
                self._count("delivered")
                return
            give_up = gives_up(d["attempts"], d.get("last_status"))
            self._count("given_up" if give_up else "failed")
            retry = None if give_up else backoff(d["attempts"])
            await self.store.delivery_failed(d["id"], error, retry, d.get("last_status"))
            where = origin(d["url"], d.get("url_ref"))
            if give_up:
                log.error(
                    "webhook %s: gave up on delivery %s after %d attempts%s: %s",
                    where,
                    d["delivery_id"],
                    d["attempts"],
                    " (a permanent refusal)" if permanent(d.get("last_status")) else "",
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
        answer = await attempt(d, self.public_url)
        d["last_status"] = answer.status  # for the delivery log
        return answer.error
