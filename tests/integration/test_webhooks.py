"""Webhooks end to end: the real daemon, a local receiver that fails first, signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Target

pytestmark = pytest.mark.slow
HOOK_SECRET = "whsec-test-1234"


@pytest.fixture
def receiver() -> Iterator[Target]:
    t = Target()
    yield t
    t.close()


def test_delivery_retries_with_a_stable_id_and_a_valid_signature(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, receiver: Target, healthd_cli: Any
) -> None:
    target = Target()
    try:
        db.execute(
            "INSERT INTO data_sources (id, name, plugin, config) VALUES ('web', 'Web', 'http', %s)",
            (json.dumps({"url": target.url}),),
        )
        r = healthd_cli(
            "webhooks",
            "add",
            receiver.url + "hook",
            "--secret-env",
            "HOOK_SECRET",
            "--events",
            "transition",
        )
        assert r.returncode == 0, r.stderr
        receiver.set("fail")
        d = DaemonProcess(db_url, tmp_path / "d.log", HOOK_SECRET=HOOK_SECRET)
        try:
            # the first transition (unknown -> connected) is refused once, then accepted
            wait_for(lambda: receiver.count("fail") >= 1, what="a first, refused delivery")
            receiver.set("ok")
            wait_for(lambda: receiver.count("ok") >= 1, timeout=15, what="the retried delivery")
            posts = [p for p in receiver.requests if p["path"] == "/hook"]
            first, retried = posts[0], posts[-1]
            assert (
                first["headers"]["X-Healthd-Delivery"] == retried["headers"]["X-Healthd-Delivery"]
            )
            assert first["body"] == retried["body"]
            assert retried["headers"]["X-Healthd-Event"] == "transition"
            expected = (
                "sha256="
                + hmac.new(HOOK_SECRET.encode(), retried["body"], hashlib.sha256).hexdigest()
            )
            assert retried["headers"]["X-Healthd-Signature"] == expected
            payload = json.loads(retried["body"])
            assert (payload["source_id"], payload["from"], payload["to"]) == (
                "web",
                "unknown",
                "connected",
            )
            wait_for(
                lambda: (
                    db.execute(
                        "SELECT delivered_at IS NOT NULL, attempts FROM webhook_outbox"
                    ).fetchone()
                    == (True, 2)
                ),
                what="the outbox row marked delivered after 2 attempts",
            )
            assert d.stop() == 0
            assert HOOK_SECRET not in d.log()
        finally:
            if d.proc.poll() is None:
                d.stop()
    finally:
        target.close()
