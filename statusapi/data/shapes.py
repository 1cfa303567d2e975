"""What the API shows of a row: the Source and Event shapes (the OpenAPI document,
statusapi/openapi/document.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from healthd.core import fields
from healthd.plugins import redact
from statusapi.data.queries import SOURCE_INDEX

_REDACTED: dict[tuple[str, str], Any] = {}
_REDACTED_MAX = 20_000


def redacted_config(plugin: str, config_text: str) -> Any:
    """The config fit to show; cached per distinct (plugin, config) text, so a changed
    config is redacted afresh and an unchanged one costs a dict lookup."""
    key = (plugin, config_text)
    out = _REDACTED.get(key)
    if out is None:
        if len(_REDACTED) >= _REDACTED_MAX:
            _REDACTED.clear()
        out = _REDACTED[key] = redact(plugin, json.loads(config_text))
    return out


def _source_shape() -> Callable[[tuple[Any, ...]], dict[str, Any]]:
    """The Source shape as one function over a row of queries.SOURCE_SELECT, generated
    from the declaration (healthd/core/fields.py) the way collections.namedtuple is: every value
    is looked up by name once, here, and the row is then read as a single dict display.
    Datetimes stay datetimes: render.dumps writes them as ISO 8601 UTC.

    Why generated rather than plain Python: the plain ways are slower per row by more
    than the 20 % this page-rendering path can spare. ``python tests/bench/bench_shape.py``
    (best of 7x3x100,000 calls, interleaved, 2-core box under load), three runs:
    generated 1.07-1.20 us/row; a dict comprehension over (name, position) pairs
    1.57-1.62x that; ``operator.itemgetter`` + ``zip`` 2.14-2.34x."""
    at = SOURCE_INDEX
    plain = [f"{n!r}: r[{at[n]}]" for n in fields.API_PLAIN]
    secret = [f"{n!r}: redacted_config(r[{at['plugin']}], r[{at[n]}])" for n in fields.API_SECRET]
    pending = (
        f"'pending': {{'status': r[{at['pending_status']}], 'count': r[{at['pending_count']}],"
        f" 'needed': r[{at['pending_needed']}]}} if r[{at['pending_status']}] else None"
    )
    code = f"lambda r: {{{', '.join([*plain, pending, *secret])}}}"
    # eval of text built from the declaration's names and positions only, never from input
    fn: Callable[[tuple[Any, ...]], dict[str, Any]] = eval(
        code, {"redacted_config": redacted_config}
    )
    return fn


source = _source_shape()


def event(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source_id": row["source_id"],
        "event": row["event"],
        "from": row["from_status"],
        "to": row["to_status"],
        "at": row["at"],
        "error_message": row["error_message"],
        "results": row["results"],
        "maintenance": row["maintenance"],
        "suppressed_by": row["suppressed_by"],
    }
