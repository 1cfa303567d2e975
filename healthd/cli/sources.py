"""`healthd sources ...`: declare, change and export what is probed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from healthd.cli.common import (
    Ctx,
    dump,
    parse_json,
    pass_ctx,
    redacted,
)
from healthd.config.sources import SETTINGS_FIELDS, SourceSpec, read_file, validate, validate_all
from healthd.core import dependencies
from healthd.core.errors import ConfigError
from healthd.store import catalog


@click.group()
def sources() -> None:
    """Manage data_sources."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sources_list(ctx: Ctx, as_json: bool) -> None:
    rows = catalog.list_sources(ctx.url)
    if as_json:
        dump({"sources": [redacted(r) for r in rows], "count": len(rows)})
        return
    for r in rows:
        state = "enabled" if r["enabled"] else "disabled"
        click.echo(f"{r['id']}\t{r['plugin']}\t{state}\t{r['connection_status']}\t{r['name']}")


@sources.command("show")
@click.argument("source_id")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sources_show(ctx: Ctx, source_id: str, as_json: bool) -> None:
    row = redacted(catalog.get_source(ctx.url, source_id))
    if as_json:
        dump(row)
        return
    for k, v in row.items():
        shown = json.dumps(v) if isinstance(v, dict | list) else ("" if v is None else v)
        click.echo(f"{k + ':':<20} {shown}")


def _source_options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--plugin"),
        click.option("--config", "config_json", help="JSON object"),
        click.option("--name"),
        click.option("--type", "type_"),
        click.option("--enabled/--disabled", default=None),
        click.option("--interval", "interval_s", type=float),
        click.option("--timeout", "timeout_s", type=float),
        click.option("--rise", type=int),
        click.option("--fall", type=int),
        click.option("--retry-interval", "retry_interval_s", type=float),
        click.option(
            "--depends-on", "depends_on", help="comma-separated parent source ids ('' clears)"
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _entry_from(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    entry = dict(base)
    if given.get("config_json") is not None:
        entry["config"] = parse_json(given["config_json"], "--config")
    for key in ("plugin", "name", "enabled", *SETTINGS_FIELDS):
        if given.get(key) is not None:
            entry[key] = given[key]
    if given.get("type_") is not None:
        entry["type"] = given["type_"]
    if given.get("depends_on") is not None:
        entry["depends_on"] = dependencies.parse_ids(given["depends_on"])
    return entry


def _validated(entry: dict[str, Any], source_id: str) -> SourceSpec:
    """validate(), its error naming the source as an import's names the entry."""
    try:
        return validate(entry)
    except ConfigError as exc:
        raise ConfigError(exc.field, exc.problem, exc.where or f"source {source_id!r}") from None


@sources.command("add")
@click.argument("source_id")
@_source_options
@pass_ctx
def sources_add(ctx: Ctx, /, source_id: str, **given: Any) -> None:
    """Add a source: healthd sources add web --plugin http --config '{"url": "..."}'"""
    spec = _validated(_entry_from({"id": source_id}, given), source_id)
    catalog.add_source(ctx.url, spec)
    click.echo(f"added {spec.id}")


@sources.command("update")
@click.argument("source_id")
@_source_options
@pass_ctx
def sources_update(ctx: Ctx, /, source_id: str, **given: Any) -> None:
    """Change some fields of a source; the rest stay as they are."""
    row = catalog.get_source(ctx.url, source_id)
    base = {k: row[k] for k in catalog.COLUMNS if row.get(k) is not None}
    spec = _validated(_entry_from(base, given), source_id)
    catalog.update_source(ctx.url, spec)
    click.echo(f"updated {spec.id}")


@sources.command("remove")
@click.argument("source_id")
@pass_ctx
def sources_remove(ctx: Ctx, source_id: str) -> None:
    catalog.remove_source(ctx.url, source_id)
    click.echo(f"removed {source_id}")


@sources.command("enable")
@click.argument("source_id")
@pass_ctx
def sources_enable(ctx: Ctx, source_id: str) -> None:
    catalog.set_enabled(ctx.url, source_id, True)
    click.echo(f"enabled {source_id}")


@sources.command("disable")
@click.argument("source_id")
@pass_ctx
def sources_disable(ctx: Ctx, source_id: str) -> None:
    catalog.set_enabled(ctx.url, source_id, False)
    click.echo(f"disabled {source_id}")


@sources.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--prune", is_flag=True, help="remove sources that are not in the file")
@pass_ctx
def sources_import(ctx: Ctx, file: Path, prune: bool) -> None:
    """Declare sources from a TOML or JSON file (upsert by id); all or nothing."""
    specs = validate_all(read_file(file))
    where = {s.id: f"entry {i} (id {s.id!r})" for i, s in enumerate(specs, start=1)}
    stats = catalog.import_sources(ctx.url, specs, prune, where)
    click.echo(", ".join(f"{n} {k}" for k, n in stats.items()))


@sources.command("export")
@click.option(
    "--with-secrets",
    is_flag=True,
    help="print inline secrets as stored (for a re-importable copy); references are always kept",
)
@pass_ctx
def sources_export(ctx: Ctx, with_secrets: bool) -> None:
    """Print every source in the import format (JSON). Inline secrets are redacted as the
    API shows them unless --with-secrets; {"env"}/{"file"} references are kept."""
    rows = catalog.export_sources(ctx.url)
    if not with_secrets:
        shown = [redacted(r) for r in rows]
        hidden = sum(1 for a, b in zip(rows, shown, strict=True) if a != b)
        rows = shown
        if hidden:
            # a redacted copy re-imported would overwrite the stored secrets with ""
            click.echo(
                f"note: inline secrets of {hidden} source(s) redacted; "
                "--with-secrets prints them for a re-importable copy",
                err=True,
            )
    dump({"sources": rows})


# -- webhooks ------------------------------------------------------------------------
