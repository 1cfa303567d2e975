"""Dependencies between sources: checked before anything is stored. Pure.

A child's failure while a parent is not connected is recorded but pages nobody (the
daemon's transition write decides that in SQL, healthd/store/parents.py; a disabled
parent counts as absent); here: that every parent exists and that
the graph has no cycle, since a cycle would let two sources silence each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from healthd.core.errors import ConfigError


def parse_ids(raw: str) -> list[str]:
    """``--depends-on a,b`` -> ["a", "b"]; an empty string clears the list."""
    return [p.strip() for p in raw.split(",") if p.strip()]


def check(
    graph: Mapping[str, Sequence[str]],
    changed: Sequence[str],
    where: Mapping[str, str] | None = None,
) -> None:
    """Every parent named by a ``changed`` source exists in ``graph`` and no cycle runs
    through one; else a ConfigError naming the source (``where[id]``, e.g. the import
    file's entry) and the unknown id or the cycle."""
    for sid in changed:
        for parent in graph.get(sid, ()):
            if parent not in graph:
                raise ConfigError("depends_on", f"unknown source {parent!r}", _at(sid, where))
    for sid in changed:
        cycle = _cycle_from(graph, sid)
        if cycle:
            raise ConfigError(
                "depends_on", "dependency cycle " + " -> ".join(cycle), _at(sid, where)
            )


def _at(sid: str, where: Mapping[str, str] | None) -> str:
    return (where or {}).get(sid) or f"source {sid!r}"


def _cycle_from(graph: Mapping[str, Sequence[str]], start: str) -> list[str] | None:
    """A path start -> ... -> start through depends_on edges, or None (iterative DFS)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for parent in graph.get(node, ()):
            if parent == start:
                return [*path, start]
            if parent not in seen:
                seen.add(parent)
                stack.append((parent, [*path, parent]))
    return None
