"""`healthd notifications ...` (and its alias `healthd webhooks ...`): who hears about
changes (webhooks and Apprise targets), their routing and formats, the delivery log, the
test button."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import click

from healthd.cli.common import (
    Ctx,
    dump,
    pass_ctx,
)
from healthd.core import dependencies
from healthd.core.errors import ConfigError, HealthdError
from healthd.core.secrets import SecretError, resolve
from healthd.core.words import (
    EVENT_KINDS,
    FLAPPING_STARTED,
    FLAPPING_STOPPED,
    PROBE_STATUSES,
    TRANSITION,
)
from healthd.notify import formats, message, targets
from healthd.notify.urls import shown_delivery, shown_url
from healthd.store import catalog

WEBHOOK_EVENTS = EVENT_KINDS
# what --events accepts: "flapping" is both of its events
EVENT_ALIASES = {"flapping": (FLAPPING_STARTED, FLAPPING_STOPPED)}
WEBHOOK_TO = PROBE_STATUSES


@click.group()
def notifications() -> None:
    """Who hears about changes: webhooks, email, chat, push (also `healthd webhooks`)."""


# the same group under its old name, so every script that uses it goes on working
webhooks = click.Group(
    "webhooks",
    commands=notifications.commands,
    help="The same as `healthd notifications` (its former name).",
    hidden=True,
)


@notifications.command("add")
@click.argument("url", required=False)
@click.option(
    "--url-env", help="the URL is in this environment variable of the daemon (not stored)"
)
@click.option(
    "--url-file",
    help="the URL is in this file, read by the daemon (relative: $CREDENTIALS_DIRECTORY)",
)
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
    help="what is sent (default: healthd for an http(s) URL, apprise for any other): "
    + "; ".join(f"{f.name}: {f.summary}" for f in formats.FORMATS.values()),
)
@pass_ctx
def notifications_add(
    ctx: Ctx,
    url: str | None,
    url_env: str | None,
    url_file: str | None,
    secret_env: str | None,
    secret_file: str | None,
    events: str,
    to: str | None,
    source_ids: str | None,
    fmt: str | None,
) -> None:
    """Add a target: an http(s) webhook, or any URL Apprise understands (mailto://,
    ntfy://, gotify://, discord://, tgram://, slack://, msteams://, ...)."""
    given = [x for x in (url, url_env, url_file) if x]
    if len(given) != 1:
        raise ConfigError("URL", "give the URL, or --url-env NAME, or --url-file PATH (one)")
    if secret_env and secret_file:
        raise ConfigError("--secret-env", "give --secret-env or --secret-file, not both")
    url_ref = {"env": url_env} if url_env else {"file": url_file} if url_file else None
    field = "--url-env" if url_env else "--url-file" if url_file else "URL"
    known = url
    if url_ref is not None:
        try:  # read here only to tell its kind and check it; the daemon reads it at send time
            known = str(resolve(url_ref)).strip()
        except SecretError:
            known = None
    signed = bool(secret_env or secret_file)
    fmt = targets.decide(known, fmt, field, signed, url_ref is not None)
    chosen = _webhook_events(events)
    to_list = _choices(to, WEBHOOK_TO, "--to", "status") if to is not None else None
    ids = dependencies.parse_ids(source_ids) if source_ids is not None else None
    if ids is not None and not ids:
        raise ConfigError("--sources", "names no source id")
    ref = {"env": secret_env} if secret_env else {"file": secret_file} if secret_file else None
    wid = catalog.add_routed_webhook(
        ctx.url, None if url_ref else url, ref, chosen, to_list, ids, fmt, url_ref
    )
    is_webhook = formats.FORMATS[fmt].transport == "http"
    click.echo(f"added webhook {wid}" if is_webhook else f"added {fmt} target {wid}")


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


def _shown(r: dict[str, Any]) -> str:
    return shown_url(r["url"], r.get("format"), r.get("url_ref"))


@notifications.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def notifications_list(ctx: Ctx, as_json: bool) -> None:
    """The targets: id, URL (scheme and host only), format, events, routing, counts."""
    rows = catalog.list_webhooks(ctx.url)
    if as_json:
        dump({"webhooks": [{**r, "url": _shown(r)} for r in rows]})
        return
    for r in rows:
        route = ""
        if r.get("to_statuses"):
            route += f"\tto {','.join(r['to_statuses'])}"
        if r.get("source_ids"):
            route += f"\tsources {','.join(r['source_ids'])}"
        click.echo(
            f"{r['id']}\t{_shown(r)}\t{r.get('format')}\t"
            f"{','.join(r['events'])}{route}\tpending {r['pending']}, failed {r['failed']}"
        )


@notifications.command("remove")
@click.argument("webhook_id", type=int)
@pass_ctx
def notifications_remove(ctx: Ctx, webhook_id: int) -> None:
    catalog.remove_webhook(ctx.url, webhook_id)
    click.echo(f"removed webhook {webhook_id}")


@notifications.command("deliveries")
@click.option("--webhook", "webhook_id", type=int, help="only this webhook's deliveries")
@click.option("--failed", is_flag=True, help="only deliveries that failed (retrying or given up)")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def notifications_deliveries(
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


@notifications.command("redeliver")
@click.argument("delivery")
@pass_ctx
def notifications_redeliver(ctx: Ctx, delivery: str) -> None:
    """Queue a delivery again (by its id or delivery id); it keeps its delivery id."""
    row = catalog.redeliver(ctx.url, delivery.strip())
    click.echo(f"queued delivery {row['id']} ({row['delivery_id']}) again")


@notifications.command("test")
@click.argument("webhook_id", type=int)
@pass_ctx
def notifications_test(ctx: Ctx, webhook_id: int) -> None:
    """Send a test message to this target now (from this shell, with its environment for a
    URL or secret given by reference) and print what it answered; exit 1 if it refused."""
    # the HTTP client and Apprise: loaded only for this command
    from healthd.notify import sender
    from healthd.plugins import httpclient

    row = catalog.get_webhook(ctx.url, webhook_id)
    d = {
        **row,
        "delivery_id": uuid.uuid4(),
        "event": formats.TEST,
        "payload": message.test_payload(datetime.now(UTC)),
    }

    async def send() -> sender.Answer:
        try:
            return await sender.attempt(d, ctx.settings.public_url)
        finally:
            await httpclient.close_session()

    answer = asyncio.run(send())
    where = f"target {webhook_id} ({_shown(row)})"
    if answer.error is not None:
        raise HealthdError(f"{where} refused the test message: {answer.error}")
    click.echo(f"{where} accepted the test message: {answer.text}")
