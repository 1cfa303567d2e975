"""`healthd maintenance ...` and `healthd prune`: planned outages and retention."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from healthd.cli.common import (
    Ctx,
    dump,
    pass_ctx,
)
from healthd.core.errors import ConfigError
from healthd.store import catalog


@click.group()
def maintenance() -> None:
    """Maintenance windows: probing and the record go on, webhooks stay quiet."""


@maintenance.command("add")
@click.option("--source", "source_ids", multiple=True, help="a source id (repeatable)")
@click.option("--all", "all_sources", is_flag=True, help="every source")
@click.option("--start", help="ISO 8601 time (UTC unless it has an offset) or 'now' [now]")
@click.option("--end", help="ISO 8601 time (UTC unless it has an offset)")
@click.option("--for", "for_", help="duration: 30m, 1h, 2h30m, 1d")
@click.option("--every", help="recurring: 'sun 02:00', 'daily 02:00' (with --for)")
@click.option("--tz", help="time zone of --every (IANA name) [UTC]")
@click.option("--reason", default="", help="shown in the list and the API")
@pass_ctx
def maintenance_add(
    ctx: Ctx,
    source_ids: tuple[str, ...],
    all_sources: bool,
    start: str | None,
    end: str | None,
    for_: str | None,
    every: str | None,
    tz: str | None,
    reason: str,
) -> None:
    """Add a window: --source ID ... | --all, and --end or --for (or --every with --for)."""

    from healthd.core import maintenance as mw

    if bool(source_ids) == all_sources:
        raise ConfigError("--source", "give one or more --source ID, or --all")
    now = datetime.now(UTC)
    ids = tuple(dict.fromkeys(source_ids)) if source_ids else None
    window = mw.build(ids, now, start, end, for_, every, tz, reason)
    wid = catalog.add_maintenance(ctx.url, window, now, "--tz" if tz else "--every")
    click.echo(f"added maintenance window {wid}: {window.describe()}")


@maintenance.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def maintenance_list(ctx: Ctx, as_json: bool) -> None:
    from healthd.core import maintenance as mw

    rows = catalog.list_maintenance(ctx.url)
    if as_json:
        dump({"windows": [_window_view(r) for r in rows], "count": len(rows)})
        return
    for r in rows:
        w = catalog.window_of(r)
        state = _state(r)
        when = f"{mw.iso(r['next_start'])} to {mw.iso(r['next_end'])}" if r["next_start"] else "-"
        sources_shown = ",".join(w.source_ids) if w.source_ids is not None else "all"
        click.echo(f"{r['id']}\t{sources_shown}\t{w.describe()}\t{state}\t{when}\t{r['reason']}")


def _state(r: dict[str, Any]) -> str:
    if not r["evaluable"]:
        return "not evaluable (time zone unknown to the database server)"
    return "active" if r["active"] else "upcoming" if r["next_start"] else "over"


def _window_view(r: dict[str, Any]) -> dict[str, Any]:
    from healthd.core import maintenance as mw

    w = catalog.window_of(r)
    return {
        "id": r["id"],
        "source_ids": r["source_ids"],
        "all_sources": r["source_ids"] is None,
        "schedule": w.describe(),
        "recurring": w.recurring,
        "starts_at": r["starts_at"],
        "ends_at": r["ends_at"],
        "every": (
            None
            if not w.recurring
            else {
                "day": None if w.every_dow is None else mw.DAYS[w.every_dow],
                "time": r["every_time"].strftime("%H:%M"),
                "tz": w.tz,
                "duration_s": r["duration"].total_seconds(),
            }
        ),
        "active": bool(r["active"]),
        "evaluable": bool(r["evaluable"]),
        "current_or_next": (
            {"start": r["next_start"], "end": r["next_end"]} if r["next_start"] else None
        ),
        "reason": r["reason"],
    }


@maintenance.command("remove")
@click.argument("window_id", type=int)
@pass_ctx
def maintenance_remove(ctx: Ctx, window_id: int) -> None:
    catalog.remove_maintenance(ctx.url, window_id)
    click.echo(f"removed maintenance window {window_id}")


# -- retention -----------------------------------------------------------------------


@click.command()
@click.option("--older-than", help="age cut-off: 30d, 12h ... [HEALTHD_HISTORY_DAYS, 400 days]")
@pass_ctx
def prune(ctx: Ctx, older_than: str | None) -> None:
    """Delete history, latency rollups and finished deliveries older than the cut-off,
    once (the daemon does it continually); the newest transition before it is kept."""
    from datetime import timedelta

    from healthd.core.maintenance import parse_duration

    age = (
        parse_duration(older_than, "--older-than")
        if older_than
        else timedelta(days=ctx.settings.history_days)
    )
    done = catalog.prune(ctx.url, age)
    if done.busy:
        click.echo("another process is pruning right now; it will finish the job")
    click.echo(
        f"pruned {done.history} history rows, {done.rollups} rollup rows, "
        f"{done.deliveries} finished deliveries"
    )
