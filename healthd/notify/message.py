"""The one message a person reads: a title and a body, the same on every target that is
not a machine's webhook (email, chat, push: healthd/notify/apprise_target.py).

Pure: built from an outbox payload (healthd/store/status.py builds it: id, event,
source_id, source_name, from, to, at, message) and the status page's public URL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote

from healthd.core.words import CONNECTED, FLAPPING_STARTED, FLAPPING_STOPPED, TRANSITION
from healthd.notify.formats import TEST

# a probe's message can be 2,000 characters (healthd/plugins/guard.py); a push or a chat
# line shows a few hundred at most, and the status page has the rest
MESSAGE_CHARS = 500


class Message(NamedTuple):
    title: str
    body: str


def _label(payload: dict[str, Any]) -> tuple[str, str]:
    """(the source's name, how it is named with its id: "Web shop (web)", or "web")."""
    sid = str(payload.get("source_id") or "")
    name = str(payload.get("source_name") or sid)
    return name, (f"{name} ({sid})" if name != sid else sid)


def _since(at: Any) -> str:
    """``at`` (RFC 3339, UTC) as a person reads it; as given when it does not parse."""
    try:
        when = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    except ValueError:
        return str(at)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def page_link(public_url: str | None, source_id: str) -> str | None:
    """The status page of one source (statusapi/page/views.py serves /status/<id>)."""
    if not public_url or not source_id:
        return None
    return f"{public_url.rstrip('/')}/status/{quote(source_id, safe='')}"


def test_payload(now: datetime) -> dict[str, Any]:
    """The payload of `healthd notifications test`: no source, the event ``test``."""
    at = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "id": None,
        "event": TEST,
        "source_id": None,
        "source_name": None,
        "from": None,
        "to": None,
        "at": at,
        "message": "a test message from healthd",
    }


def compose(payload: dict[str, Any], public_url: str | None = None) -> Message:
    """The title and body of one event."""
    event = payload.get("event") or TRANSITION
    name, who = _label(payload)
    sid = str(payload.get("source_id") or "")
    was, now = payload.get("from"), payload.get("to")
    if event == TEST:
        title = "healthd: a test message"
        lines = [
            "This is a test of a notification target of healthd.",
            "If you read it, this target will hear when a source changes status.",
        ]
        link = public_url.rstrip("/") + "/status" if public_url else None
    else:
        if event == FLAPPING_STARTED:
            title = f"{name}: flapping"
            lines = [
                f"{who} is flapping: its status keeps changing.",
                "Each change is still recorded; you hear when it settles.",
                f"Its status now: {now}.",
            ]
        elif event == FLAPPING_STOPPED:
            title = f"{name}: stopped flapping"
            lines = [f"{who} has settled.", f"Its status now: {now}."]
        else:
            title = f"{name}: {was} → {now}"
            lines = [f"{who} is {now}; it was {was}."]
        lines.append(f"Since: {_since(payload.get('at'))}")
        message = payload.get("message")
        if message and not (event == TRANSITION and now == CONNECTED):
            lines.append(f"Message: {_short(str(message))}")
        link = page_link(public_url, sid)
    if link:
        lines.append(f"Status page: {link}")
    return Message(title, "\n".join(lines))
