"""The `healthd` command: parse, call, print. No SQL and no probing live here."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from healthd import __version__, catalog, dependencies, plugins, settings
from healthd.errors import ConfigError, HealthdError, NotFound
from healthd.sources import SETTINGS_FIELDS, read_file, validate, validate_all
from healthd.words import (
    CONNECTED,
    EVENT_KINDS,
    FLAPPING_STARTED,
    FLAPPING_STOPPED,
    PROBE_STATUSES,
    TRANSITION,
)

EXIT_FAILED, EXIT_UNKNOWN = 2, 3


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"healthd: {message}", err=True)
    sys.exit(code)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        # UTC with a Z, as the API and the webhooks say it, whatever the session's TimeZone
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def dump(value: Any) -> None:
    click.echo(json.dumps(value, default=_json_default, indent=2, sort_keys=False))


def _redacted(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if "config" in out:
        out["config"] = plugins.redact(out.get("plugin", ""), out["config"])
    return out


def _parse_json(raw: str, field: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(field, f"is not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ConfigError(field, "is nested too deeply") from None


class Ctx:
    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        self._settings: settings.Settings | None = None

    @property
    def settings(self) -> settings.Settings:
        if self._settings is None:
            self._settings = settings.load(**self.overrides)
        return self._settings

    @property
    def url(self) -> str:
        return self.settings.require_database_url()


pass_ctx = click.make_pass_decorator(Ctx)


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
@click.pass_context
def main(ctx: click.Context, /, default_timeout: float | None, **flags: Any) -> None:
    """healthd: debounced health checks written to PostgreSQL."""
    flags["timeout"] = default_timeout
    # an API setting (statusapi/config.py): no command of this CLI reads it
    flags.pop("api_database_url", None)
    ctx.obj = Ctx(flags)


@main.command()
@pass_ctx
def migrate(ctx: Ctx) -> None:
    """Apply pending database migrations."""
    from healthd import migrate as migrations

    applied = migrations.apply(ctx.url)
    click.echo(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )


@main.command()
@pass_ctx
def run(ctx: Ctx) -> None:
    """Run the probe daemon in the foreground (SIGTERM/SIGINT stop it)."""
    from healthd import daemon

    sys.exit(daemon.main(ctx.settings))


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
    from healthd import up as up_mod

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
            }
        )
    else:
        label = source_id or name
        click.echo(
            f"{label}: {result.status} ({result.latency_ms:.0f} ms)"
            + (f" - {result.message}" if result.message else "")
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
    config = _parse_json(config_json or "{}", "--config")
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
                "fields": {
                    k: {
                        "type": f.kind,
                        "required": f.required,
                        "default": f.default,
                        "secret": f.secret,
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
        for k, f in p.get("fields", {}).items():
            flags = ["required" if f["required"] else f"default {json.dumps(f['default'])}"]
            if f["secret"]:
                flags.append("secret")
            click.echo(f"    {k} ({f['type']}; {', '.join(flags)}) {f['help']}")


# -- sources -------------------------------------------------------------------------


@main.group()
def sources() -> None:
    """Manage data_sources."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sources_list(ctx: Ctx, as_json: bool) -> None:
    rows = catalog.list_sources(ctx.url)
    if as_json:
        dump({"sources": [_redacted(r) for r in rows], "count": len(rows)})
        return
    for r in rows:
        state = "enabled" if r["enabled"] else "disabled"
        click.echo(f"{r['id']}\t{r['plugin']}\t{state}\t{r['connection_status']}\t{r['name']}")


@sources.command("show")
@click.argument("source_id")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sources_show(ctx: Ctx, source_id: str, as_json: bool) -> None:
    row = _redacted(catalog.get_source(ctx.url, source_id))
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
        entry["config"] = _parse_json(given["config_json"], "--config")
    for key in ("plugin", "name", "enabled", *SETTINGS_FIELDS):
        if given.get(key) is not None:
            entry[key] = given[key]
    if given.get("type_") is not None:
        entry["type"] = given["type_"]
    if given.get("depends_on") is not None:
        entry["depends_on"] = dependencies.parse_ids(given["depends_on"])
    return entry


@sources.command("add")
@click.argument("source_id")
@_source_options
@pass_ctx
def sources_add(ctx: Ctx, /, source_id: str, **given: Any) -> None:
    """Add a source: healthd sources add web --plugin http --config '{"url": "..."}'"""
    spec = validate(_entry_from({"id": source_id}, given))
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
    spec = validate(_entry_from(base, given))
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
        shown = [_redacted(r) for r in rows]
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

WEBHOOK_EVENTS = EVENT_KINDS
# what --events accepts: "flapping" is both of its events
EVENT_ALIASES = {"flapping": (FLAPPING_STARTED, FLAPPING_STOPPED)}
WEBHOOK_TO = PROBE_STATUSES
WEBHOOK_FORMATS = ("healthd", "slack", "standard")


@main.group()
def webhooks() -> None:
    """Manage webhook subscribers."""


@webhooks.command("add")
@click.argument("url")
@click.option(
    "--secret-env", help="sign with the secret in this environment variable (of the daemon)"
)
@click.option(
    "--secret-file", help="sign with the secret in this file (relative: $CREDENTIALS_DIRECTORY)"
)
@click.option(
    "--events",
    default="transition,flapping",
    show_default=True,
    help="comma-separated events to send: transition, flapping",
)
@click.option("--to", "to", help="only transitions to these statuses, e.g. error,disconnected")
@click.option("--sources", "source_ids", help="only these source ids (comma-separated)")
@click.option(
    "--format",
    "fmt",
    default="healthd",
    show_default=True,
    help='body and signature: healthd, slack ({"text"}) or standard (Standard Webhooks)',
)
@pass_ctx
def webhooks_add(
    ctx: Ctx,
    url: str,
    secret_env: str | None,
    secret_file: str | None,
    events: str,
    to: str | None,
    source_ids: str | None,
    fmt: str,
) -> None:
    if not url.startswith(("http://", "https://")):
        raise ConfigError("URL", "must start with http:// or https://")
    if secret_env and secret_file:
        raise ConfigError("--secret-env", "give --secret-env or --secret-file, not both")
    chosen = _webhook_events(events)
    to_list = _choices(to, WEBHOOK_TO, "--to", "status") if to is not None else None
    if fmt not in WEBHOOK_FORMATS:
        raise ConfigError(
            "--format", f"unknown format {fmt!r} (known: {', '.join(WEBHOOK_FORMATS)})"
        )
    if fmt == "standard" and not (secret_env or secret_file):
        raise ConfigError(
            "--format", "standard needs a whsec_ secret (--secret-env or --secret-file)"
        )
    ids = dependencies.parse_ids(source_ids) if source_ids is not None else None
    if ids is not None and not ids:
        raise ConfigError("--sources", "names no source id")
    ref = {"env": secret_env} if secret_env else {"file": secret_file} if secret_file else None
    wid = catalog.add_routed_webhook(ctx.url, url, ref, chosen, to_list, ids, fmt)
    click.echo(f"added webhook {wid}")


def _choices(raw: str, known: tuple[str, ...], option: str, what: str) -> list[str]:
    chosen = [c.strip() for c in raw.split(",") if c.strip()]
    if not chosen:
        raise ConfigError(option, f"names no {what} (known: {', '.join(known)})")
    for c in chosen:
        if c not in known:
            raise ConfigError(option, f"unknown {what} {c!r} (known: {', '.join(known)})")
    return list(dict.fromkeys(chosen))


def _webhook_events(raw: str) -> list[str]:
    out: list[str] = []
    known = (TRANSITION, "flapping", *WEBHOOK_EVENTS[1:])
    for e in _choices(raw, known, "--events", "event"):
        out.extend(EVENT_ALIASES.get(e, (e,)))
    return list(dict.fromkeys(out))


@webhooks.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def webhooks_list(ctx: Ctx, as_json: bool) -> None:
    rows = catalog.list_webhooks(ctx.url)
    if as_json:
        dump({"webhooks": [{**r, "url": _shown_url(r)} for r in rows]})
        return
    for r in rows:
        route = ""
        if r.get("to_statuses"):
            route += f"\tto {','.join(r['to_statuses'])}"
        if r.get("source_ids"):
            route += f"\tsources {','.join(r['source_ids'])}"
        click.echo(
            f"{r['id']}\t{_shown_url(r)}\t{r.get('format', 'healthd')}\t"
            f"{','.join(r['events'])}{route}\tpending {r['pending']}, failed {r['failed']}"
        )


def _shown_url(row: dict[str, Any]) -> str:
    """No credentials or query; a Slack-format URL's path is its secret, so not that either."""
    from healthd.secrets import safe_url
    from healthd.webhooks import origin

    if row.get("format") == "slack":
        return origin(row["url"]) + "/..."
    return safe_url(row["url"])


@webhooks.command("remove")
@click.argument("webhook_id", type=int)
@pass_ctx
def webhooks_remove(ctx: Ctx, webhook_id: int) -> None:
    catalog.remove_webhook(ctx.url, webhook_id)
    click.echo(f"removed webhook {webhook_id}")


@webhooks.command("deliveries")
@click.option("--webhook", "webhook_id", type=int, help="only this webhook's deliveries")
@click.option("--failed", is_flag=True, help="only deliveries that failed (retrying or given up)")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def webhooks_deliveries(
    ctx: Ctx, webhook_id: int | None, failed: bool, limit: int, as_json: bool
) -> None:
    """The delivery log, newest first: state, attempts, last HTTP status or error."""
    from healthd.webhooks import origin, without_path

    rows = catalog.list_deliveries(ctx.url, webhook_id, failed, limit)
    for r in rows:
        if r["last_error"]:
            r["last_error"] = without_path(r["last_error"], r["url"])
        r["url"] = origin(r["url"])
        r["delivery_id"] = str(r["delivery_id"])
    if as_json:
        dump({"deliveries": rows, "count": len(rows)})
        return
    for r in rows:
        last = r["last_error"] or ("" if r["last_status"] is None else f"HTTP {r['last_status']}")
        nxt = f"\tnext {_ago_or_in(r['next_attempt_at'])}" if r["next_attempt_at"] else ""
        click.echo(
            f"{r['id']}\t{r['delivery_id']}\twebhook {r['webhook_id']}\t{r['event']}\t"
            f"{r['source_id'] or ''}\t{r['state']}\tattempts {r['attempts']}\t{last}{nxt}"
        )


def _ago_or_in(ts: datetime) -> str:
    secs = (ts - datetime.now(ts.tzinfo)).total_seconds()
    return f"in {secs:.0f}s" if secs > 0 else "now"


@webhooks.command("redeliver")
@click.argument("delivery")
@pass_ctx
def webhooks_redeliver(ctx: Ctx, delivery: str) -> None:
    """Queue a delivery again (by its id or delivery id); it keeps its delivery id."""
    row = catalog.redeliver(ctx.url, delivery.strip())
    click.echo(f"queued delivery {row['id']} ({row['delivery_id']}) again")


# -- maintenance ---------------------------------------------------------------------


@main.group()
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
    from datetime import UTC

    from healthd import maintenance as mw

    if bool(source_ids) == all_sources:
        raise ConfigError("--source", "give one or more --source ID, or --all")
    now = datetime.now(UTC)
    ids = tuple(dict.fromkeys(source_ids)) if source_ids else None
    window = mw.build(ids, now, start, end, for_, every, tz, reason)
    wid = catalog.add_maintenance(ctx.url, window, now)
    click.echo(f"added maintenance window {wid}: {window.describe()}")


@maintenance.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def maintenance_list(ctx: Ctx, as_json: bool) -> None:
    from healthd import maintenance as mw

    rows = catalog.list_maintenance(ctx.url)
    if as_json:
        dump({"windows": [_window_view(r) for r in rows], "count": len(rows)})
        return
    for r in rows:
        w = catalog.window_of(r)
        state = "active" if r["active"] else "upcoming" if r["next_start"] else "over"
        when = f"{mw.iso(r['next_start'])} to {mw.iso(r['next_end'])}" if r["next_start"] else "-"
        sources_shown = ",".join(w.source_ids) if w.source_ids is not None else "all"
        click.echo(f"{r['id']}\t{sources_shown}\t{w.describe()}\t{state}\t{when}\t{r['reason']}")


def _window_view(r: dict[str, Any]) -> dict[str, Any]:
    from healthd import maintenance as mw

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


@main.command()
@click.option("--older-than", help="age cut-off: 30d, 12h ... [HEALTHD_HISTORY_DAYS, 400 days]")
@pass_ctx
def prune(ctx: Ctx, older_than: str | None) -> None:
    """Delete history, latency rollups and finished deliveries older than the cut-off,
    once (the daemon does it continually); the newest transition before it is kept."""
    from datetime import UTC, timedelta

    from healthd.maintenance import parse_duration

    age = (
        parse_duration(older_than, "--older-than")
        if older_than
        else timedelta(days=ctx.settings.history_days)
    )
    done = catalog.prune(ctx.url, datetime.now(UTC) - age)
    if done.busy:
        click.echo("another process is pruning right now; it will finish the job")
    click.echo(
        f"pruned {done.history} history rows, {done.rollups} rollup rows, "
        f"{done.deliveries} finished deliveries"
    )


def cli_entry() -> None:
    """Entry point with the one-line error policy: no traceback reaches a user."""
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except HealthdError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except SystemExit:
        raise
    except Exception as exc:  # last resort: one line, never a traceback
        from healthd.secrets import strip_url_credentials

        fail(f"internal error: {type(exc).__name__}: {strip_url_credentials(str(exc))}")
