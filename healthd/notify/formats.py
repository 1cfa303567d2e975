"""Notification formats: how one delivery's body and headers are made, by format name.

A webhook subscriber picks a format (`healthd webhooks add --format NAME`); the sender
(healthd/notify/sender.py) asks this registry for the body and the headers of each
attempt. The CLI's choices, the OpenAPI enum and how a subscriber's URL is shown
(healthd/notify/urls.py) derive from ``FORMATS``, and a test holds it against the CHECK
constraint on ``webhooks.format`` (migrations/0014_notification_targets.sql). Adding a
format is a class here, its line in ``FORMATS``, the CHECK in a migration, and its test.
A format's ``transport`` says who performs an attempt: ``http`` (the sender's POST of
``body()`` with ``headers()``) or ``apprise`` (healthd/notify/apprise_target.py, which
sends the person's title and body of healthd/notify/message.py).

Pure: no I/O, no clock (the attempt's time is passed in), no secrets resolved here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, ClassVar

from healthd.core.words import CONNECTED, FLAPPING_STARTED, FLAPPING_STOPPED

# the event of `healthd notifications test ID` (healthd/notify/message.py words it)
TEST = "test"


def body_of(payload: dict[str, Any]) -> bytes:
    # canonical: the same bytes (and so the same signature) on every retry
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Format:
    """One way of putting an event on the wire. Subclasses set the class attributes and
    override what differs; the defaults are healthd's own JSON, signed when a secret is set."""

    name: ClassVar[str]
    summary: ClassVar[str]  # a few words for `--format`'s help
    # the URL's path carries the credential (Slack, Discord): shown as its origin only
    path_is_secret: ClassVar[bool] = False
    # what it must be signed with, when `webhooks add` refuses it without a secret
    needs_secret: ClassVar[str | None] = None
    # who performs one attempt: the sender's HTTP POST, or Apprise
    transport: ClassVar[str] = "http"

    def check_secret(self, secret: str) -> None:
        """Raise ValueError when ``secret`` cannot sign this format's deliveries."""

    def body(self, event: str, payload: dict[str, Any]) -> bytes:
        return body_of(payload)

    def headers(
        self, delivery_id: str, event: str, body: bytes, secret: str | None, now: float
    ) -> dict[str, str]:
        """The headers of one attempt made at ``now`` (epoch seconds)."""
        headers = {
            "Content-Type": "application/json",
            "X-Healthd-Event": event,
            "X-Healthd-Delivery": delivery_id,
        }
        if secret is not None:
            headers.update(self.signed(delivery_id, body, secret, now))
        return headers

    def signed(self, delivery_id: str, body: bytes, secret: str, now: float) -> dict[str, str]:
        return {"X-Healthd-Signature": signature(secret, body)}


class HealthdFormat(Format):
    name = "healthd"
    summary = "healthd's event JSON, X-Healthd-Signature"


def slack_escape(text: str) -> str:
    """Slack's three control characters as its entities: in a message's text ``<`` opens
    a mention (``<!channel>`` pings everyone) or a link whose shown text can differ from
    its target (``<https://evil|bank>``), and ``&`` starts an entity. Nothing else is
    escaped (Slack shows ``&quot;`` literally)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(payload: dict[str, Any]) -> str:
    """One line a person reads in a chat channel. Every part of it (a source's name, a
    target's error message) comes from outside, so the whole line is escaped."""
    return slack_escape(_slack_line(payload))


def _slack_line(payload: dict[str, Any]) -> str:
    who = payload.get("source_name") or payload.get("source_id")
    sid = payload.get("source_id")
    label = f"{who} ({sid})" if who != sid else str(sid)
    event = payload.get("event")
    if event == TEST:
        return "healthd: a test message (this target will hear when a source changes status)"
    if event == FLAPPING_STARTED:
        return f"healthd: {label} is flapping"
    if event == FLAPPING_STOPPED:
        return f"healthd: {label} stopped flapping"
    line = f"healthd: {label} is {payload.get('to')} (was {payload.get('from')})"
    message = payload.get("message")
    if message and payload.get("to") != CONNECTED:
        line += f": {message}"
    return line


class SlackFormat(Format):
    name = "slack"
    summary = '{"text": ...} for Slack, Mattermost and Discord\'s Slack endpoint'
    path_is_secret = True

    def body(self, event: str, payload: dict[str, Any]) -> bytes:
        return body_of({"text": slack_text(payload)})


def standard_secret(secret: str) -> bytes:
    """The key of a Standard Webhooks secret, ``whsec_<base64>``."""
    if not secret.startswith("whsec_"):
        raise ValueError("the secret of a standard webhook must look like whsec_<base64>")
    try:
        return base64.b64decode(secret[len("whsec_") :], validate=True)
    except ValueError:
        raise ValueError("the secret of a standard webhook is not valid base64") from None


def standard_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` (Standard Webhooks)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class StandardFormat(Format):
    name = "standard"
    summary = "Standard Webhooks (webhook-id, -timestamp, -signature; a whsec_ secret)"
    needs_secret = "a whsec_ secret"

    def check_secret(self, secret: str) -> None:
        standard_secret(secret)

    def body(self, event: str, payload: dict[str, Any]) -> bytes:
        return body_of(
            {"type": f"healthd.{event}", "timestamp": payload.get("at"), "data": payload}
        )

    def signed(self, delivery_id: str, body: bytes, secret: str, now: float) -> dict[str, str]:
        # the timestamp is the attempt's (receivers reject old ones); the id stays the same
        stamp = int(now)
        key = standard_secret(secret)
        return {
            "webhook-id": delivery_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": standard_signature(key, delivery_id, stamp, body),
        }


class AppriseFormat(Format):
    """Any URL the Apprise library understands (mailto://, ntfy://, gotify://, ...): it
    sends one title and one body a person reads, never healthd's JSON, and is not signed.
    Which part of such a URL is a credential differs by service, so it is shown as its
    scheme, and its host only where that names a host (healthd/notify/urls.py)."""

    name = "apprise"
    summary = "any URL Apprise speaks: mailto://, ntfy://, gotify://, discord://, tgram://, ..."
    path_is_secret = True
    transport = "apprise"


FORMATS: dict[str, Format] = {
    f.name: f for f in (HealthdFormat(), SlackFormat(), StandardFormat(), AppriseFormat())
}
# the formats an http(s) webhook URL may take
HTTP_FORMATS: tuple[str, ...] = tuple(n for n, f in FORMATS.items() if f.transport == "http")
DEFAULT = HealthdFormat.name


def get(name: str | None) -> Format:
    """The format of a subscriber (a stored NULL is the default)."""
    return FORMATS[name or DEFAULT]
