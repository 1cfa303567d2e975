"""When a parent silences its children: the one condition, shared by the daemon's
transition write (healthd/store/status.py) and the API's ``unreachable_via``
(statusapi/data/queries.py), as deliverylog shares its query."""

from __future__ import annotations

from healthd.core.words import CONNECTED, sql_list


def silences(parent: str, status: str | None = None) -> str:
    """The SQL condition under which the data_sources row ``parent`` (an alias) silences
    its children: enabled and not connected (``status``: the expression of its status,
    its row's by default). A disabled parent counts as absent: it is never probed, so it
    stays ``unknown`` for ever and would otherwise silence them for good."""
    st = status or f"{parent}.connection_status"
    return f"({parent}.enabled AND {st} <> {sql_list((CONNECTED,))})"
