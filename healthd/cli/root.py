"""The `healthd` group and its one-word commands: migrate, run, up, probe, status, plugins."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from healthd import __version__, plugins
from healthd.cli.common import (
    EXIT_FAILED,
    EXIT_UNKNOWN,
    Ctx,
    dump,
    fail,
    parse_json,
    pass_ctx,
)
from healthd.config import settings
from healthd.core.errors import ConfigError, HealthdError, NotFound
from healthd.core.phases import NAMES as PHASES
from healthd.core.schema import Adopted, SchemaState
from healthd.core.text import visible
from healthd.core.words import (
    CONNECTED,
)
from healthd.store import catalog


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="healthd")
@click.option("--database-url", help="libpq URL or conninfo [env HEALTHD_DATABASE_URL]")
@click.option("--api-database-url", help="the API's connection [env STATUSAPI_DATABASE_URL]")
@click.option("--interval", type=float, help="seconds between probes [env HEALTHD_INTERVAL, 30]")
@click.option(
    "--rise", type=click.IntRange(min=1), help="successes to become connected [env HEALTHD_RISE, 3]"
)
@click.option(
    "--fall",
    type=click.IntRange(min=1),
    help="failures to become not connected [env HEALTHD_FALL, 3]",
)
@click.option(
    "--retry-interval",
    type=float,
    help="seconds between probes while a change is pending [env HEALTHD_RETRY_INTERVAL]",
)
@click.option(
    "--timeout",
    "default_timeout",
    type=float,
    help="per-probe timeout, seconds [env HEALTHD_TIMEOUT, 10]",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="probes in flight [env HEALTHD_CONCURRENCY, 500]",
)
@click.option(
    "--log-format", type=click.Choice(settings.LOG_FORMATS), help="[env HEALTHD_LOG_FORMAT, text]"
)
@click.option(
    "--history-days",
    type=click.IntRange(min=1),
    help="days of history, rollups and finished deliveries kept [env HEALTHD_HISTORY_DAYS, 400]",
)
@click.option(
    "--db-timeout",
    type=click.FloatRange(min=1.0, max=3600.0),
    help="bound on a database statement and a silent connection, s [env HEALTHD_DB_TIMEOUT, 15]",
)
@click.option(
    "--spool-dir",
    type=click.Path(file_okay=False),
    help="where `run` keeps results not written at stop, for the next start"
    " [env HEALTHD_SPOOL_DIR, $STATE_DIRECTORY or ~/.local/state/healthd]",
)
@click.option(
    "--public-url",
    callback=lambda _c, _p, v: None if v is None else settings.http_url("--public-url", v),
    help="the status page's address, linked from notifications [env HEALTHD_PUBLIC_URL]",
)
@click.pass_context
def main(ctx: click.Context, /, default_timeout: float | None, **flags: Any) -> None:
    """healthd: debounced health checks written to PostgreSQL."""
    flags["timeout"] = default_timeout
    # an API setting (statusapi/web/config.py): no command of this CLI reads it
    flags.pop("api_database_url", None)
    ctx.obj = Ctx(flags)


@main.command()
@click.option(
    "--status",
    "show_status",
    is_flag=True,
    help="show what is applied and pending, and whether the table was adopted; change nothing"
    " (exit 1 when something is pending)",
)
@pass_ctx
def migrate(ctx: Ctx, show_status: bool) -> None:
    """Apply pending database migrations (adopting the original data_sources table first,
    when the database holds one)."""
    from healthd.store import migrate as migrations

    if show_status:
        state = migrations.state(ctx.url)
        for line in _migration_lines(state, migrations.known()):
            click.echo(line)
        sys.exit(0 if state.ok else 1)
    report = migrations.apply_report(ctx.url)
    if report.adopted is not None:
        click.echo("adopted the original data_sources table: " + _adoption_line(report.adopted))
    applied = report.applied
    click.echo(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )
    if report.newer:
        # nothing failed (there is nothing to apply), but the daemon of this version will
        # not run on this database (healthd/daemon/schemagate.py): say so, once
        click.echo(
            f"healthd: warning: {', '.join(report.newer)} applied by a newer healthd: this"
            " healthd's daemon waits until it is upgraded",
            err=True,
        )


def _adoption_line(a: Adopted) -> str:
    mapped = ", ".join(f"{col} {n}" for col, n in a.counts) or "none"
    return (
        f"{a.rows} row(s) and every original column kept; TIMESTAMP values read in time zone"
        f" {a.time_zone}; values mapped: {mapped}"
    )


def _utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _migration_lines(state: SchemaState, known: dict[int, str]) -> list[str]:
    lines = [
        f"applied  {a.name}" + (f"  {_utc(a.applied_at)}" if a.applied_at else "")
        for a in state.applied
        if a.version in known
    ]
    lines += [f"unknown  {a.name} (applied by a newer healthd)" for a in state.unknown]
    lines += [f"pending  {name}" for name in state.pending]
    a = state.adopted
    if a is not None:
        lines.append(
            f"data_sources: adopted from the original table {_utc(a.at)}: {_adoption_line(a)}"
        )
        lines += [
            f"  row {m.source_id!r} {m.column}: {_word(m.original)} -> {_word(m.adopted)}"
            for m in a.mapped
        ]
        if a.total_mapped > len(a.mapped):
            more = a.total_mapped - len(a.mapped)
            lines.append(f"  ... {more} more in table healthd_adoption")
    elif state.original_table:
        lines.append(
            "data_sources: the original table, not adopted yet (`healthd migrate` adopts it)"
        )
    else:
        lines.append("data_sources: " + ("created by healthd" if state.applied else "none yet"))
    if state.problem:
        lines.append(state.problem)
    return lines


def _word(value: str | None) -> str:
    return "NULL" if value is None else repr(value)


@main.command()
@click.option(
    "--workers",
    metavar="N|auto",
    help="probe processes under one supervisor; auto = one per core [env HEALTHD_WORKERS, 1]",
)
@pass_ctx
def run(ctx: Ctx, workers: str | None) -> None:
    """Run the probe daemon in the foreground (SIGTERM/SIGINT stop it)."""
    from dataclasses import replace

    from healthd.daemon import loop as daemon

    s = ctx.settings
    if workers is not None:
        s = replace(s, workers=settings.workers("--workers", workers))
    if s.workers > 1:
        from healthd.daemon import supervisor

        sys.exit(supervisor.main(s))
    sys.exit(daemon.main(s))


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="where the embedded PostgreSQL keeps its data [default: ./.healthd; as root "
    "/var/lib/healthd/embedded/<this directory>, which the postgres user can reach]",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@pass_ctx
def up(ctx: Ctx, data_dir: Path | None, port: int, host: str) -> None:
    """Try it out: embedded PostgreSQL + migrations + examples + daemon + API."""
    from healthd.local import up as up_mod

    sys.exit(up_mod.main(ctx.settings, data_dir, host, port))


# -- probe ---------------------------------------------------------------------------


@main.command()
@click.argument("source_id", required=False)
@click.option("--plugin", "plugin_name", help="probe without a database: the plugin")
@click.option("--config", "config_json", help="probe without a database: the config as JSON")
@click.option(
    "--timeout",
    type=float,
    help="seconds (default: the source's or HEALTHD_TIMEOUT)",
)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_ctx
def probe(
    ctx: Ctx,
    source_id: str | None,
    plugin_name: str | None,
    config_json: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Probe one source once and print the result; nothing is stored.

    Exit 0 success, 2 failed, 3 unknown (bad config, no such source)."""
    try:
        name, config, timeout = _probe_target(ctx, source_id, plugin_name, config_json, timeout)
        plugin = plugins.create(name, config)
    except HealthdError as exc:
        fail(str(exc), EXIT_UNKNOWN)
    result = asyncio.run(_probe_once(plugin, timeout))
    if as_json:
        dump(
            {
                "source": source_id,
                "plugin": name,
                "status": result.status,
                "ok": result.ok,
                "message": result.message,
                "latency_ms": result.latency_ms,
                "phases": result.phases.as_dict() if result.phases else None,
            }
        )
    else:
        # the message is the target's own words: shown, never obeyed by the terminal
        label = visible(source_id or name)
        click.echo(
            f"{label}: {result.status} ({result.latency_ms:.0f} ms)"
            + (f" - {visible(result.message)}" if result.message else "")
        )
        if result.phases:
            # blackbox_exporter's phase names (healthd/core/phases.py), in their order
            click.echo(
                "  phases: "
                + ", ".join(f"{n} {v:.2f} ms" for n, v in zip(PHASES, result.phases, strict=True))
            )
    sys.exit(0 if result.ok else EXIT_FAILED)


def _probe_target(
    ctx: Ctx,
    source_id: str | None,
    plugin_name: str | None,
    config_json: str | None,
    timeout: float | None,
) -> tuple[str, Any, float]:
    if timeout is not None:
        _, lo, hi = settings.RANGES["timeout"]
        timeout = settings.check_number("--timeout", timeout, float, lo, hi)
    if source_id and (plugin_name or config_json):
        raise ConfigError("ID", "give either a source ID or --plugin/--config, not both")
    if source_id:
        row = catalog.get_source(ctx.url, source_id)
        return row["plugin"], row["config"], timeout or row["timeout_s"] or ctx.settings.timeout
    if not plugin_name:
        raise ConfigError("--plugin", "is required when no source ID is given")
    config = parse_json(config_json or "{}", "--config")
    return plugin_name, config, timeout or ctx.settings.timeout


async def _probe_once(plugin: plugins.Plugin, timeout: float) -> plugins.ProbeResult:
    try:
        return await plugins.run_check(plugin, timeout)
    finally:
        await plugin.close()
        from healthd.plugins import httpclient

        await httpclient.close_session()


# -- status / plugins ----------------------------------------------------------------


@main.command()
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def status(ctx: Ctx, as_json: bool) -> None:
    """The current status of every source. Exit 0 if every enabled source is connected."""
    rows = catalog.list_sources(ctx.url)
    if as_json:
        dump({"sources": [_status_view(r) for r in rows], "count": len(rows)})
    else:
        _print_table(rows)
    bad = [r for r in rows if r["enabled"] and r["connection_status"] != CONNECTED]
    sys.exit(EXIT_FAILED if bad else 0)


def _status_view(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "name",
        "plugin",
        "enabled",
        "connection_status",
        "test_status",
        "last_tested_at",
        "test_error_message",
        "status_changed_at",
        "latency_ms",
        "flapping",
    )
    return {k: row[k] for k in keys}


def _ago(ts: datetime | None) -> str:
    if ts is None:
        return "never"
    secs = (datetime.now(ts.tzinfo) - ts).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs / size:.0f}{unit} ago"
    return f"{max(secs, 0):.0f}s ago"


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = ("ID", "PLUGIN", "STATUS", "LAST TEST", "CHANGED", "MESSAGE")
    lines = [header]
    for r in rows:
        st = r["connection_status"] if r["enabled"] else "disabled"
        if r["flapping"]:
            st += " (flapping)"
        if r["pending_status"]:
            st += f" -> {r['pending_status']}?"
        lines.append(
            (
                r["id"],
                r["plugin"],
                st,
                _ago(r["last_tested_at"]),
                _ago(r["status_changed_at"]),
                (r["test_error_message"] or "")[:60],
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        click.echo(
            "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)) + "  " + line[-1]
        )
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["connection_status"]] = counts.get(r["connection_status"], 0) + 1
    click.echo(
        f"\n{len(rows)} source(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    )


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True)
def plugins_cmd(as_json: bool) -> None:
    """The available plugins and their config fields."""
    out: list[dict[str, Any]] = []
    for name in plugins.names():
        try:
            cls = plugins.get(name)
        except NotFound as exc:
            out.append({"name": name, "error": str(exc)})
            continue
        out.append(
            {
                "name": name,
                "description": cls.description,
                # a kind whose client is an optional extra: whether it is installed here
                **({"extra": cls.extra, "installed": cls.installed()} if cls.extra else {}),
                "fields": {
                    k: {
                        "type": f.kind,
                        "required": f.required,
                        "default": f.default,
                        "secret": f.secret,
                        "aliases": list(f.aliases),
                        "help": f.help,
                    }
                    for k, f in cls.fields.items()
                },
            }
        )
    if as_json:
        dump({"plugins": out})
        return
    for p in out:
        click.echo(f"{p['name']}: {p.get('description') or p.get('error')}")
        if p.get("extra"):
            extra = p["extra"]
            click.echo(
                f"    extra {extra!r}: installed"
                if p["installed"]
                else f"    extra {extra!r}: NOT installed (pip install 'healthd[{extra}]')"
            )
        for k, f in p.get("fields", {}).items():
            flags = ["required" if f["required"] else f"default {json.dumps(f['default'])}"]
            if f["secret"]:
                flags.append("secret")
            if f["aliases"]:
                flags.append("also " + ", ".join(f["aliases"]))
            click.echo(f"    {k} ({f['type']}; {', '.join(flags)}) {f['help']}")


# -- sources -------------------------------------------------------------------------
