"""Shields-style badges ("label | message"): the SVG, drawn without fetching anything, and
the shields.io "endpoint" JSON for the same badge. Pure."""

from __future__ import annotations

from html import escape
from typing import Any

from healthd.core.text import CONTROL
from healthd.core.words import CONNECTED, DISCONNECTED, ERROR, UNKNOWN
from statusapi.page.pageview import band

# Verdana 11 px advance widths, coarsely: narrow, wide, everything else
_NARROW = set("fijlrtI!|.,:;' ()[]1")
_WIDE = set("mwMWGOQDHNU%@…")

# Each keeps white 11 px text above 4.5:1 (WCAG AA), and the two failures differ in
# lightness as well as hue so that they stay apart for red-green colour blindness too
# (CIE76 distance above 25 under simulated protanopia and deuteranopia; the reds they
# replaced were 4 apart). tests/unit/test_pageview.py checks both.
STATUS_COLOURS = {
    CONNECTED: "#2e7d32",  # 5.1:1
    DISCONNECTED: "#a4133c",  # crimson, 7.7:1
    ERROR: "#a15c00",  # amber-brown, 5.2:1
    UNKNOWN: "#5f6368",  # 6.0:1
}
UNKNOWN_GREY = STATUS_COLOURS[UNKNOWN]  # also "not found" and "no data"
LABEL_GREY = "#555"  # 7.5:1

STYLES = ("flat", "flat-square")
DEFAULT_STYLE = STYLES[0]
LABEL_MAX = 40  # characters: a README's row of badges stays a row


def text_width(s: str) -> float:
    return sum(4.0 if c in _NARROW else 10.0 if c in _WIDE else 7.0 for c in s)


def shorten(text: str, limit: int = LABEL_MAX) -> str:
    """``text`` on one line and at most ``limit`` characters: cut at the last word that
    fits (mid-word only when the first word alone is longer than half) and end with an
    ellipsis."""
    # whitespace (tab, newline) becomes one space; any other control character (a name
    # written with SQL, a ?label=) is not allowed in XML even escaped: U+FFFD in its place
    # keeps the SVG well-formed
    text = CONTROL.sub("\ufffd", " ".join(text.split()))
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if text[limit - 1] != " " and space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" -_.,:;/") + "…"


def uptime_colour(pct: float | None) -> str:
    """The colour of the uptime's band: the same bands as the status page's day bar."""
    return UNKNOWN_GREY if pct is None else band(pct).badge


def uptime_text(pct: float | None) -> str:
    if pct is None:
        return "no data"
    if pct >= 99.995 or pct == 0:
        return f"{pct:.0f}%"
    return f"{pct:.2f}%"


def endpoint(label: str, message: str, colour: str, style: str | None = None) -> dict[str, Any]:
    """The shields.io endpoint badge's JSON (schemaVersion 1): shields renders it with
    its own styles and logos, `https://img.shields.io/endpoint?url=<this URL>`. Only the
    keys its schema knows: it refuses others."""
    doc: dict[str, Any] = {
        "schemaVersion": 1,
        "label": shorten(label),
        "message": shorten(message) or "–",  # shields requires a message
        "color": colour,
        "labelColor": LABEL_GREY,
    }
    if style is not None:
        doc["style"] = style
    return doc


def svg(label: str, message: str, colour: str, style: str = DEFAULT_STYLE) -> str:
    """The badge as shields draws its flat and flat-square styles; an empty label leaves
    out the left part, as shields does."""
    label, message = shorten(label), shorten(message)
    lw = round(text_width(label) + 12) if label else 0
    mw = round(text_width(message) + 12)
    total = lw + mw
    lab, msg = escape(label), escape(message)
    name = f"{lab}: {msg}" if label else msg
    flat = style == "flat"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img"'
        f' aria-label="{name}"><title>{name}</title>'
    ]
    if flat:  # the flat style's faint gloss and rounded corners; flat-square has neither
        parts.append(
            '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb"'
            ' stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
            f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        )
    parts.append('<g clip-path="url(#r)">' if flat else '<g shape-rendering="crispEdges">')
    if label:
        parts.append(f'<rect width="{lw}" height="20" fill="{LABEL_GREY}"/>')
    parts.append(f'<rect x="{lw}" width="{mw}" height="20" fill="{colour}"/>')
    if flat:
        parts.append(f'<rect width="{total}" height="20" fill="url(#s)"/>')
    parts.append(
        '</g><g fill="#fff" text-anchor="middle"'
        ' font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
    )
    texts = [(lw / 2, lab)] if label else []
    for x, text in (*texts, (lw + mw / 2, msg)):
        if flat:  # the flat style's text shadow
            parts.append(f'<text x="{x:.1f}" y="15" fill="#010101" fill-opacity=".3">{text}</text>')
        parts.append(f'<text x="{x:.1f}" y="14">{text}</text>')
    parts.append("</g></svg>")
    return "".join(parts)
