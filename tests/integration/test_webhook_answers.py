"""What the sender does with what it sends and with what it is answered: Slack's control
characters escaped, permanent refusals (a 4xx but 408/425/429) given up after a few
attempts with the receiver's answer in the delivery log. The real sender and store (or
the real `healthd run`) against receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from healthd.notify.sender import PERMANENT_ATTEMPTS, Sender
from healthd.plugins import httpclient
from healthd.store.facade import Store
from tests.fix_ops import FAST, add_source
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Scripted, Target

pytestmark = pytest.mark.slow

# what Alertmanager answers a body it cannot read (its v2 API's error shape)
ALERTMANAGER_400 = b'{"code":400,"message":"json: cannot unmarshal object into Go value"}'


def _queue(db: psycopg.Connection[Any], url: str, fmt: str, payload: dict[str, Any]) -> None:
    """One due delivery of ``payload`` to ``url`` in format ``fmt``."""
    db.execute(
        "INSERT INTO data_sources (id, name, plugin, config) VALUES (%s, %s, 'http', '{}')",
        (payload["source_id"], payload["source_name"]),
    )
    db.execute("INSERT INTO webhooks (url, format) VALUES (%s, %s)", (url, fmt))
    db.execute(
        "INSERT INTO status_history (id, source_id, from_status, to_status)"
        " VALUES (1, %s, 'connected', 'error')",
        (payload["source_id"],),
    )
    db.execute(
        "INSERT INTO webhook_outbox (webhook_id, history_id, event, payload)"
        " SELECT id, 1, 'transition', %s FROM webhooks",
        (json.dumps(payload),),
    )


def _attempts(db_url: str, n: int, db: psycopg.Connection[Any]) -> None:
    """``n`` rounds of the real sender, each with the delivery due (the backoff skipped)."""

    async def go() -> None:
        store = Store(db_url, "n")
        try:
            for _ in range(n):
                db.execute("UPDATE webhook_outbox SET next_attempt_at = now()")
                await Sender(store).run_once()
        finally:
            await httpclient.close_session()
            await store.close()

    asyncio.run(go())


def test_slack_text_cannot_ping_the_channel_or_disguise_a_link(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    slack = Scripted(lambda r: (200, {}, b"ok"))
    try:
        payload = {
            "id": 1,
            "event": "transition",
            "source_id": "pay",
            "source_name": "Payments <!channel>",
            "from": "connected",
            "to": "error",
            "at": "2026-11-25T12:00:00Z",
            "message": "<https://evil.example|your bank> & <@U123>",
        }
        _queue(db, slack.base + "/services/T/B/X", "slack", payload)
        _attempts(db_url, 1, db)
        (post,) = slack.requests
        text = json.loads(post["body"])["text"]
        assert text == (
            "healthd: Payments &lt;!channel&gt; (pay) is error (was connected):"
            " &lt;https://evil.example|your bank&gt; &amp; &lt;@U123&gt;"
        )
        # Slack reads a mention or a link only between < and >: none is left
        assert "<" not in text and ">" not in text
        row = db.execute("SELECT delivered_at IS NOT NULL FROM webhook_outbox").fetchone()
        assert row == (True,)
    finally:
        slack.close()


@pytest.mark.parametrize("code", [408, 425, 429, 500, 503])
def test_transient_answers_are_retried_past_the_permanent_limit(
    db: psycopg.Connection[Any], db_url: str, code: int
) -> None:
    busy = Scripted(lambda r: (code, {}, b"try later"))
    try:
        payload = {"id": 1, "event": "transition", "source_id": "web", "source_name": "Web"}
        _queue(db, busy.base + "/hook", "healthd", payload)
        _attempts(db_url, PERMANENT_ATTEMPTS + 1, db)
        row = db.execute(
            "SELECT attempts, gave_up_at, last_status, last_error FROM webhook_outbox"
        ).fetchone()
        assert row == (PERMANENT_ATTEMPTS + 1, None, code, f"HTTP {code}: try later")
    finally:
        busy.close()


def test_a_permanent_refusal_is_given_up_with_the_answer_in_the_log(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, healthd_cli: Any
) -> None:
    """Alertmanager's 400 was retried 15 times over hours; now the real daemon gives up
    after three attempts (a few seconds) and the delivery log says why."""
    alertmanager = Scripted(lambda r: (400, {"Content-Type": "application/json"}, ALERTMANAGER_400))
    target = Target()
    try:
        add_source(db, "web", target.url)
        assert healthd_cli("webhooks", "add", alertmanager.base + "/api/v2/alerts").returncode == 0
        d = DaemonProcess(db_url, tmp_path / "d.log", **FAST)
        try:
            wait_for(
                lambda: (
                    db.execute("SELECT gave_up_at IS NOT NULL FROM webhook_outbox").fetchone()
                    == (True,)
                ),
                timeout=30,
                what="the refused delivery given up",
            )
            r = healthd_cli("webhooks", "deliveries", "--json")
            assert r.returncode == 0, r.stderr
            (row,) = json.loads(r.stdout)["deliveries"]
            assert (row["state"], row["attempts"], row["last_status"]) == (
                "given_up",
                PERMANENT_ATTEMPTS,
                400,
            )
            assert row["last_error"] == "HTTP 400: " + ALERTMANAGER_400.decode()
            assert len(alertmanager.requests) == PERMANENT_ATTEMPTS
            assert "(a permanent refusal)" in d.log()
        finally:
            d.stop()
    finally:
        alertmanager.close()
        target.close()
