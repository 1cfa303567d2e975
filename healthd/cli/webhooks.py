"""`healthd webhooks ...`: subscribers, their routing and formats, the delivery log."""

from __future__ import annotations

from datetime import datetime

import click

from healthd.cli.common import (
    Ctx,
    dump,
    pass_ctx,
)
from healthd.core import dependencies
from healthd.core.errors import ConfigError
from healthd.core.words import (
    EVENT_KINDS,
    FLAPPING_STARTED,
    FLAPPING_STOPPED,
    PROBE_STATUSES,
    TRANSITION,
)
from healthd.notify import formats
from healthd.notify.urls import shown_delivery, shown_url
from healthd.store import catalog

WEBHOOK_EVENTS = EVENT_KINDS
# what --events accepts: "flapping" is both of its events
EVENT_ALIASES = {"flapping": (FLAPPING_STARTED, FLAPPING_STOPPED)}
WEBHOOK_TO = PROBE_STATUSES


@click.group()
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
    default=formats.DEFAULT,
    show_default=True,
    help="body and signature: "
    + "; ".join(f"{f.name}: {f.summary}" for f in formats.FORMATS.values()),
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
    if fmt not in formats.FORMATS:
        raise ConfigError(
            "--format", f"unknown format {fmt!r} (known: {', '.join(formats.FORMATS)})"
        )
    needs = formats.FORMATS[fmt].needs_secret
    if needs and not (secret_env or secret_file):
        raise ConfigError("--format", f"{fmt} needs {needs} (--secret-env or --secret-file)")
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
        dump({"webhooks": [{**r, "url": shown_url(r["url"], r.get("format"))} for r in rows]})
        return
    for r in rows:
        route = ""
        if r.get("to_statuses"):
            route += f"\tto {','.join(r['to_statuses'])}"
        if r.get("source_ids"):
            route += f"\tsources {','.join(r['source_ids'])}"
        click.echo(
            f"{r['id']}\t{shown_url(r['url'], r.get('format'))}\t{r.get('format')}\t"
            f"{','.join(r['events'])}{route}\tpending {r['pending']}, failed {r['failed']}"
        )


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
    rows = [shown_delivery(r) for r in catalog.list_deliveries(ctx.url, webhook_id, failed, limit)]
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
