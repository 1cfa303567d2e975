"""The house's import rules, read from the code itself (every import statement, those inside
functions included): no circle between modules, the core imports nothing of healthd but the
core, and the API never reaches the daemon, the CLI or the store's writers."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in ("healthd", "statusapi"):
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _owner(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                subs = [f"{base}.{a.name}" for a in node.names]
                # `from pkg import submodule` imports the submodule (pkg's __init__ is a face)
                names = subs if all(s in mods for s in subs) else [base, *subs]
            for name in names:
                target = _owner(name, mods)
                if target and target != mod:
                    edges[mod].add(target)
    return edges


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle() -> None:
    edges = _graph()
    assert sum(map(len, edges.values())) > 300  # the graph was read at all
    assert _circles(edges) == []


def test_the_core_imports_only_the_core() -> None:
    for mod, targets in _graph().items():
        if mod.startswith("healthd.core"):
            assert all(t.startswith("healthd.core") for t in targets), (mod, targets)


def test_the_api_never_imports_the_daemon_side() -> None:
    # statusapi reads; it may share pure helpers (redaction, formats, URL helpers, the
    # delivery log's and the parent rule's SQL text) but never the daemon, the CLI, or the store's writers
    banned = ("healthd.daemon", "healthd.cli", "healthd.local", "healthd.store")
    allowed = {
        "healthd.store",
        "healthd.store.deliverylog",
        "healthd.store.migrate",
        "healthd.store.parents",
    }
    for mod, targets in _graph().items():
        if mod.startswith("statusapi"):
            wrong = [t for t in targets if t.startswith(banned) and t not in allowed]
            assert not wrong, (mod, wrong)
