"""Shields-style SVG badges ("label | message"), drawn without fetching anything. Pure."""

from __future__ import annotations

from html import escape

from healthd.core.words import CONNECTED, DISCONNECTED, ERROR, UNKNOWN
from statusapi.page.pageview import band

# Verdana 11 px advance widths, coarsely: narrow, wide, everything else
_NARROW = set("fijlrtI!|.,:;' ()[]1")
_WIDE = set("mwMWGOQDHNU%@")

STATUS_COLOURS = {
    CONNECTED: "#2e7d32",
    DISCONNECTED: "#c62828",
    ERROR: "#b3261e",
    UNKNOWN: "#5f6368",
}


def text_width(s: str) -> float:
    return sum(4.0 if c in _NARROW else 10.0 if c in _WIDE else 7.0 for c in s)


def uptime_colour(pct: float | None) -> str:
    """The colour of the uptime's band: the same bands as the status page's day bar."""
    return STATUS_COLOURS[UNKNOWN] if pct is None else band(pct).badge


def uptime_text(pct: float | None) -> str:
    if pct is None:
        return "no data"
    if pct >= 99.995 or pct == 0:
        return f"{pct:.0f}%"
    return f"{pct:.2f}%"


def svg(label: str, message: str, colour: str) -> str:
    label = label[:40]
    lw = round(text_width(label) + 12)
    mw = round(text_width(message) + 12)
    total = lw + mw
    lab, msg = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img"'
        f' aria-label="{lab}: {msg}"><title>{lab}: {msg}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb"'
        ' stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{mw}" height="20" fill="{colour}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif"'
        ' font-size="11">'
        f'<text x="{lw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{lab}</text>'
        f'<text x="{lw / 2:.1f}" y="14">{lab}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{msg}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="14">{msg}</text></g></svg>'
    )
