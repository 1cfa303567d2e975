"""Control characters: what a name or an id may not hold, and how text from elsewhere (a
target's answer, a row written with SQL) is shown on a terminal or in a log.

A control character (C0, DEL, C1) in a source's name breaks the XML of its badge, and in
a message it reaches a terminal as an instruction (ESC [2J clears the screen, OSC 0 sets
the window title, CSI 0x9b starts one in some terminals). Shown, each is its escape
(``\\x1b``), so the text says what was there and the terminal obeys none of it."""

from __future__ import annotations

import re

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
CONTROL_RULE = "must not contain control characters"


def has_control(text: str) -> bool:
    return CONTROL.search(text) is not None


def visible(text: str) -> str:
    """``text`` with each control character written as its escape: one line, inert."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
