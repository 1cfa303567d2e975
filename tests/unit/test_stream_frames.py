"""The streams' rendering of one event (statusapi/stream/sse.py Event): the WebSocket frame
and the SSE text carry the row's JSON exactly, whatever characters its message holds."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from statusapi.data import shapes
from statusapi.stream.sse import Event
from statusapi.web.render import dumps

NASTY = [
    "plain",
    "bad key\u2028id: 999999999\u2028x",
    "bad key\u2028id: oops\u2028x",
    "a\u2029event: flapping\u0085data: {}",
    "cr\rlf\ncrlf\r\nff\x0cvt\x0bfs\x1cgs\x1drs\x1e",
    'quote " backslash \\ and }}',
]


def row(message: str, event: str = "transition") -> dict[str, Any]:
    return {
        "id": 42,
        "source_id": "ai",
        "event": event,
        "from_status": "connected",
        "to_status": "error",
        "at": datetime(2026, 12, 2, tzinfo=UTC),
        "error_message": message,
        "results": None,
        "maintenance": False,
        "suppressed_by": None,
    }


@pytest.mark.parametrize("message", NASTY)
def test_frame_and_sse_carry_the_row(message: str) -> None:
    r = row(message)
    want = json.loads(dumps(shapes.event(r)))  # what the JSON API answers for the row
    e = Event.of(r)
    frame = json.loads(e.frame)
    assert frame == {"id": 42, "event": "status", "data": want}
    assert frame["data"]["error_message"] == message
    # the SSE text, split as the format says (CR, LF, CRLF) and as str.splitlines would
    for lines in (re.split(r"\r\n|\r|\n", e.sse), e.sse.splitlines()):
        assert [ln for ln in lines if ln] == [
            "id: 42",
            "event: status",
            f"data: {e.data}",
        ]
    assert json.loads(e.data) == want


def test_flapping_event_name() -> None:
    assert json.loads(Event.of(row("x", "flapping_start")).frame)["event"] == "flapping"
