"""Webhook routing (--to, --sources, --events), formats (slack, standard) and the delivery
log, end to end: the real `healthd run`, receivers on 127.0.0.1, the CLI and the API."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fix_ops import (
    FAST,
    add_source,
    api,
    one_line_error,
    receiver,
    status_of,
)
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target

pytestmark = pytest.mark.slow


def _delivered(db: psycopg.Connection[Any], webhook_id: int) -> int:
    row = db.execute(
        "SELECT count(*) FROM webhook_outbox WHERE webhook_id = %s AND delivered_at IS NOT NULL",
        (webhook_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def test_to_error_gets_the_error_and_not_the_recovery(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, healthd_cli: Any
) -> None:
    target = Target()
    with receiver() as only_errors, receiver() as everything:
        add_source(db, "web", target.url)
        add_source(db, "other", target.url)
        r = healthd_cli("webhooks", "add", only_errors.url, "--to", "error", "--sources", "web")
        assert r.returncode == 0 and r.stdout.strip() == "added webhook 1", r.stderr
        assert healthd_cli("webhooks", "add", everything.url).returncode == 0
        d = DaemonProcess(db_url, tmp_path / "d.log", **FAST)
        try:
            wait_for(lambda: status_of(db, "web") == "connected", what="web connected")
            target.set("fail")
            wait_for(lambda: status_of(db, "web") == "error", what="web in error")
            target.set("ok")
            wait_for(lambda: status_of(db, "web") == "connected", what="web recovered")
            # the catch-all receiver has the recovery, so routing has been decided for it
            wait_for(
                lambda: any(
                    b["source_id"] == "web" and b["from"] == "error" for b in everything.bodies()
                ),
                what="the recovery at the catch-all receiver",
            )
            wait_for(lambda: _delivered(db, 1) == 1, what="the error delivered")
            got = only_errors.bodies()
            assert [(b["source_id"], b["from"], b["to"]) for b in got] == [
                ("web", "connected", "error")
            ]
            outbox = db.execute(
                "SELECT count(*) FROM webhook_outbox WHERE webhook_id = 1"
            ).fetchone()
            assert outbox == (1,)  # neither the recovery nor "other" was queued for it
        finally:
            d.stop()
            target.close()


def _slack_shape(body: bytes, headers: dict[str, str]) -> int:
    """What Slack's incoming webhooks accept: a JSON object with a non-empty "text"."""
    if not headers.get("content-type", "").startswith("application/json"):
        return 400
    try:
        doc = json.loads(body)
    except ValueError:
        return 400
    ok = isinstance(doc, dict) and isinstance(doc.get("text"), str) and doc["text"].strip()
    return 200 if ok else 400


def test_slack_and_standard_formats(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, healthd_cli: Any
) -> None:
    from standardwebhooks import Webhook

    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    target = Target()
    with receiver(_slack_shape) as slack, receiver() as standard:
        add_source(db, "web", target.url)
        assert healthd_cli("webhooks", "add", slack.url, "--format", "slack").returncode == 0
        listed = healthd_cli("webhooks", "list").stdout
        assert "127.0.0.1" in listed and "secret-path" not in listed  # a Slack path is a secret
        r = healthd_cli(
            "webhooks", "add", standard.url, "--format", "standard", "--secret-env", "STD_SECRET"
        )
        assert r.returncode == 0, r.stderr
        d = DaemonProcess(db_url, tmp_path / "d.log", STD_SECRET=secret, **FAST)
        try:
            wait_for(lambda: _delivered(db, 1) >= 1, what="the Slack delivery accepted")
            wait_for(lambda: _delivered(db, 2) >= 1, what="the standard delivery accepted")
            text = json.loads(slack.posts[0]["body"])["text"]
            assert "WEB (web) is connected (was unknown)" in text
            post = standard.posts[0]
            payload = Webhook(secret).verify(post["body"], post["headers"])
            assert payload["type"] == "healthd.transition"
            assert (payload["data"]["source_id"], payload["data"]["to"]) == ("web", "connected")
            delivery = db.execute(
                "SELECT delivery_id::text FROM webhook_outbox WHERE webhook_id = 2"
            )
            assert post["headers"]["webhook-id"] == delivery.fetchone()[0]  # type: ignore[index]
            assert d.stop() == 0
            assert secret not in d.log()
        finally:
            if d.proc.poll() is None:
                d.stop()
            target.close()


def test_delivery_log_and_redeliver(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, healthd_cli: Any
) -> None:
    target = Target()
    with receiver() as hook:
        hook.status = 500
        add_source(db, "web", target.url)
        assert healthd_cli("webhooks", "add", hook.url).returncode == 0
        d = DaemonProcess(db_url, tmp_path / "d.log", **FAST)
        try:
            wait_for(lambda: hook.posts, what="a first, refused delivery")

            def log_row() -> dict[str, Any] | None:
                r = healthd_cli("webhooks", "deliveries", "--json")
                assert r.returncode == 0, r.stderr
                rows = json.loads(r.stdout)["deliveries"]
                return rows[0] if rows and rows[0]["last_status"] == 500 else None

            row = wait_for(log_row, what="the failure in the delivery log")
            assert row["state"] == "pending" and row["attempts"] >= 1
            assert row["next_attempt_at"] is not None and row["url"].count("/") == 2
            assert "secret-path" not in json.dumps(row)
            text = healthd_cli("webhooks", "deliveries", "--failed", "--webhook", "1").stdout
            assert "pending" in text and "HTTP 500" in text and "attempts" in text
            with api(db_url) as client:
                got = client.get("/api/v1/webhooks/deliveries?failed=true").get_json()
                (shown,) = got["deliveries"]
                assert shown["url"] == hook.url.split("/hook")[0]
                assert (shown["state"], shown["last_status"]) == ("pending", 500)
                assert client.get("/api/v1/webhooks/deliveries?webhook=x").status_code == 400

            # the last allowed attempt is due now: the daemon tries, fails and gives up
            db.execute("UPDATE webhook_outbox SET attempts = 14, next_attempt_at = now()")
            wait_for(
                lambda: (
                    db.execute("SELECT gave_up_at IS NOT NULL FROM webhook_outbox").fetchone()
                    == (True,)
                ),
                what="the delivery given up",
            )
            r = healthd_cli("webhooks", "deliveries", "--json")
            assert json.loads(r.stdout)["deliveries"][0]["state"] == "given_up"
            refused = len(hook.posts)
            hook.status = 200
            r = healthd_cli("webhooks", "redeliver", str(row["id"]))
            assert r.returncode == 0 and row["delivery_id"] in r.stdout, r.stderr
            wait_for(lambda: len(hook.posts) > refused, what="the redelivery")
            wait_for(lambda: _delivered(db, 1) == 1, what="the redelivery marked delivered")
            first, again = hook.posts[0], hook.posts[-1]
            assert again["headers"]["x-healthd-delivery"] == row["delivery_id"]
            assert first["headers"]["x-healthd-delivery"] == row["delivery_id"]
            assert again["body"] == first["body"]
            one_line_error(healthd_cli("webhooks", "redeliver", "999"), "no delivery '999'")
        finally:
            d.stop()
            target.close()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--to", "error,broken"), "--to: unknown status 'broken'"),
        (("--format", "teams"), "--format: unknown format 'teams'"),
        (("--format", "standard"), "--format: standard needs a whsec_ secret"),
        (("--sources", "nope"), "--sources: no source with id 'nope'"),
        (("--events", "transition,paged"), "--events: unknown event 'paged'"),
    ],
)
def test_bad_routing_is_one_line_and_changes_nothing(
    db: psycopg.Connection[Any], cli: Any, args: tuple[str, ...], needle: str
) -> None:
    add_source(db, "web", "http://127.0.0.1:9/")
    one_line_error(cli("webhooks", "add", "http://127.0.0.1:9/h", *args), needle)
    assert db.execute("SELECT count(*) FROM webhooks").fetchone() == (0,)
