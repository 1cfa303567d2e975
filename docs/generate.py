"""Regenerate the parts of docs/ that the code already says: the configuration table (from
the settings tables), the CLI reference (from click), the HTTP routes (from the OpenAPI
document) and the plugins' fields (from the plugin registry).

    python docs/generate.py          # rewrite what is out of date
    python docs/generate.py --check  # exit 1 naming the stale files (tests/unit/test_docs.py)

Each generated part sits between ``<!-- generated: NAME -->`` and ``<!-- end: NAME -->`` in
a Markdown file; everything around it is written by hand.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

DOCS = Path(__file__).resolve().parent


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls)}  # type: ignore[arg-type]


def _flags() -> dict[str, str]:
    """``[env NAME`` in an option's help -> the option, across every command."""
    from healthd.cli import main

    found: dict[str, str] = {}
    for _, cmd in _commands(main, ()):
        for p in cmd.params:
            m = re.search(r"\[env (\w+)", getattr(p, "help", None) or "")
            if m and isinstance(p, click.Option):
                found.setdefault(m.group(1), max(p.opts, key=len))
    return found


def configuration() -> str:
    from healthd.config import settings
    from statusapi.web import config

    flags = _flags()
    rows = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    tables: list[tuple[dict[str, settings.Var], dict[str, Any]]] = [
        (settings.VARIABLES, _defaults(settings.Settings)),
        # gunicorn's before the app's: STATUSAPI_THREADS is set by gunicorn.conf.py
        (config.SERVER, {}),
        (config.VARIABLES, _defaults(config.ApiSettings)),
    ]
    seen: set[str] = set()
    for table, defaults in tables:
        for name, var in table.items():
            if name in seen:
                continue
            seen.add(name)
            default = defaults.get(var.attr)
            shown = "" if default in (None, (), dataclasses.MISSING) else f"`{default}`"
            flag = f"`{flags[name]}`" if name in flags else ""
            rows.append(f"| `{name}` | {flag} | {shown} | {var.help} |")
    return "\n".join(rows)


def _commands(
    group: click.Command, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, group
    if isinstance(group, click.Group):
        for name in sorted(group.commands):
            yield from _commands(group.commands[name], (*path, name))


def cli() -> str:
    from healthd.cli import main

    out: list[str] = []
    for path, cmd in _commands(main, ()):
        if cmd.hidden:
            continue
        name = " ".join(("healthd", *path))
        # as a real invocation builds it: the root's settings (-h too) reach every command
        with click.Context(cmd, info_name=name, terminal_width=100, **main.context_settings) as ctx:
            text = cmd.get_help(ctx)
        out += [f"### `{name}`", "", "```text", text, "```", ""]
    return "\n".join(out).rstrip()


def routes() -> str:
    from statusapi.openapi.document import document

    rows = ["| method | route | what it returns |", "|---|---|---|"]
    for path, ops in document()["paths"].items():
        for method, op in ops.items():
            if method.startswith("x-") or not isinstance(op, dict):
                continue
            text = " ".join((op.get("summary") or "").split())
            rows.append(f"| {method.upper()} | `{path}` | {text} |")
    return "\n".join(rows)


def plugins() -> str:
    from healthd import plugins as registry

    out: list[str] = []
    for name in registry.names():
        try:
            cls = registry.get(name)
        except Exception as exc:  # noqa: BLE001 - a plugin that fails to load is documented so
            out += [f"### `{name}`", "", f"Not installed here: {exc}", ""]
            continue
        out += [f"### `{name}`", "", cls.description or "", ""]
        out += ["| field | type | default | secret | meaning |", "|---|---|---|---|---|"]
        for field, f in cls.fields.items():
            default = (
                "required" if f.required else ("" if f.default is None else f"`{f.default!r}`")
            )
            secret = "yes" if f.secret else ""
            also = f" (also spelled {', '.join(f'`{x}`' for x in f.aliases)})" if f.aliases else ""
            out.append(f"| `{field}` | {f.kind} | {default} | {secret} | {f.help or ''}{also} |")
        out.append("")
    return "\n".join(out).rstrip()


PARTS: dict[str, tuple[str, Callable[[], str]]] = {
    "configuration": ("configuration.md", configuration),
    "cli": ("cli.md", cli),
    "routes": ("api.md", routes),
    "plugins": ("plugins.md", plugins),
}


def render(text: str, name: str, body: str) -> str:
    start, end = f"<!-- generated: {name} -->", f"<!-- end: {name} -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"docs: no '{start}' ... '{end}' block to fill")
    return pattern.sub(lambda _: f"{start}\n{body}\n{end}", text)


def stale() -> dict[Path, str]:
    """{file: its regenerated text} for every file whose generated part is out of date."""
    out: dict[Path, str] = {}
    for name, (file, make) in PARTS.items():
        path = DOCS / file
        text = out.get(path, path.read_text("utf-8"))
        new = render(text, name, make())
        if new != path.read_text("utf-8"):
            out[path] = new
    return out


def main(argv: list[str]) -> int:
    changed = stale()
    if "--check" in argv:
        for path in changed:
            print(f"{path.name} is out of date: run python docs/generate.py")  # noqa: T201
        return 1 if changed else 0
    for path, text in changed.items():
        path.write_text(text, "utf-8")
        print(f"wrote {path.name}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
