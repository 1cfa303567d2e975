"""What the API shows of a row: the Source and Event shapes of interface.md §7."""

from __future__ import annotations

import json
import operator
from typing import Any

from healthd import fields
from healthd.plugins import redact
from statusapi.queries import SOURCE_INDEX

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


# positions in a row of queries.SOURCE_SELECT, looked up once by name
_plain = operator.itemgetter(*(SOURCE_INDEX[n] for n in fields.API_PLAIN))
_PLUGIN = SOURCE_INDEX["plugin"]
_PENDING_STATUS = SOURCE_INDEX["pending_status"]
_PENDING_COUNT = SOURCE_INDEX["pending_count"]
_PENDING_NEEDED = SOURCE_INDEX["pending_needed"]
_SECRET = tuple((n, SOURCE_INDEX[n]) for n in fields.API_SECRET)


def source(r: tuple[Any, ...]) -> dict[str, Any]:
    """A Source from a row of queries.SOURCE_SELECT."""
    # datetimes stay datetimes: rendered as ISO 8601 UTC by render.dumps
    d = dict(zip(fields.API_PLAIN, _plain(r), strict=True))
    pending = r[_PENDING_STATUS]
    d["pending"] = (
        {"status": pending, "count": r[_PENDING_COUNT], "needed": r[_PENDING_NEEDED]}
        if pending
        else None
    )
    plugin = r[_PLUGIN]
    for name, i in _SECRET:
        d[name] = redacted_config(plugin, r[i])
    return d


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
    }
