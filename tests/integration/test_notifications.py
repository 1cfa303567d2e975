"""Apprise targets end to end: the real `healthd run` and CLI, Apprise itself, and real
servers on 127.0.0.1: an SMTP server (aiosmtpd), an ntfy and a Gotify (the scripted HTTP
server), Apprise's json:// hook; routing, retries, the delivery log, the test button, and
a token given by reference kept out of every output."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fix_ops import FAST, add_source, api, one_line_error, status_of
from tests.fix_procs import DaemonProcess, wait_for
from tests.fix_servers import Answer, Request, Scripted, SmtpServer, Target

pytestmark = pytest.mark.slow
PUBLIC = "https://status.example.com"


class Hook(Scripted):
    """An HTTP endpoint that refuses the first ``refuse`` requests (500), then accepts."""

    def __init__(self, refuse: int = 0, body: bytes = b'{"ok": true}') -> None:
        self.refuse = refuse
        self.reply = body
        super().__init__(self._answer)

    def _answer(self, req: Request) -> Answer:
        with self.lock:
            refused = self.refuse > 0
            self.refuse -= 1 if refused else 0
        return (500 if refused else 200), {"Content-Type": "application/json"}, self.reply

    def docs(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests if r["method"] == "POST"]

    @property
    def host(self) -> str:
        return self.base.removeprefix("http://")


def _rows(db: psycopg.Connection[Any], target_id: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT payload->>'to', attempts, delivered_at IS NOT NULL FROM webhook_outbox"
        " WHERE webhook_id = %s ORDER BY id",
        (target_id,),
    ).fetchall()


def _added(result: Any) -> int:
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def test_an_email_arrives_naming_the_source_and_its_new_status(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, healthd_cli: Any
) -> None:
    target, smtp = Target(), SmtpServer()
    try:
        add_source(db, "web", target.url)
        url = f"mailto://127.0.0.1:{smtp.port}?from=healthd@example.com&to=ops@example.com"
        r = healthd_cli("notifications", "add", url, "--events", "transition")
        assert r.stdout.strip() == "added apprise target 1", r.stderr
        d = DaemonProcess(db_url, tmp_path / "d.log", HEALTHD_PUBLIC_URL=PUBLIC, **FAST)
        try:
            wait_for(lambda: smtp.mails(), what="the first email (unknown -> connected)")
            target.set("fail")
            wait_for(lambda: len(smtp.mails()) >= 2, what="the second email (-> error)")
            to, subject, body = smtp.mails()[1]
            assert to == "ops@example.com"
            assert subject == "WEB: connected → error"
            assert "WEB (web) is error; it was connected." in body
            assert "Since: " in body and " UTC" in body
            assert "Message: " in body  # the probe's reason
            assert f"Status page: {PUBLIC}/status/web" in body
            assert smtp.mails()[0][1] == "WEB: unknown → connected"
            wait_for(lambda: [row[2] for row in _rows(db, 1)] == [True, True], what="delivered")
        finally:
            assert d.stop() == 0
    finally:
        smtp.close()
        target.close()


def test_ntfy_and_gotify_pushes_and_a_token_by_reference_shown_nowhere(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, healthd_cli: Any
) -> None:
    ntfy_token, gotify_token = "tk_ntfysecret4711", "AgotifySecret0815"
    # the first ntfy answer is a refusal that quotes the token back: not in the log either
    ntfy = Hook(refuse=1, body=json.dumps({"error": f"bad token {ntfy_token}"}).encode())
    gotify = Hook()
    target = Target()
    env = {"NTFY_URL": f"ntfy://{ntfy.host}/alerts?token={ntfy_token}"}
    try:
        add_source(db, "web", target.url)
        n = _added(healthd_cli("notifications", "add", "--url-env", "NTFY_URL", env=env))
        _added(healthd_cli("notifications", "add", f"gotify://{gotify.host}/{gotify_token}"))
        d = DaemonProcess(db_url, tmp_path / "d.log", **FAST, **env)
        try:
            wait_for(lambda: gotify.docs(), what="the Gotify push")
            wait_for(lambda: [row[2] for row in _rows(db, n)] == [True], what="the ntfy push")
            push = ntfy.requests[-1]
            assert push["headers"]["authorization"] == f"Bearer {ntfy_token}"
            sent = json.loads(push["body"])
            assert (sent["topic"], sent["title"]) == ("alerts", "WEB: unknown → connected")
            assert "WEB (web) is connected; it was unknown." in sent["message"]
            got = gotify.requests[0]
            assert got["path"] == "/message"
            assert got["headers"]["x-gotify-key"] == gotify_token
            assert json.loads(got["body"])["title"] == "WEB: unknown → connected"
            assert _rows(db, n) == [("connected", 2, True)]  # refused once, then accepted

            listed = healthd_cli("notifications", "list").stdout
            listed_json = healthd_cli("notifications", "list", "--json").stdout
            log_rows = healthd_cli("notifications", "deliveries", "--json").stdout
            with api(db_url) as client:
                answer = client.get("/api/v1/webhooks/deliveries").get_data(as_text=True)
            assert "(URL in $NTFY_URL)" in listed and f"gotify://{gotify.host}" in listed
            shown = json.loads(log_rows)["deliveries"]
            assert {r["url"] for r in shown} == {"(URL in $NTFY_URL)", f"gotify://{gotify.host}"}
            assert db.execute("SELECT url FROM webhooks WHERE id = %s", (n,)).fetchone() == (None,)
            assert d.stop() == 0
            for text in (listed, listed_json, log_rows, answer, d.log()):
                for secret in (ntfy_token, gotify_token, "alerts"):
                    assert secret not in text, (secret, text)
        finally:
            if d.proc.poll() is None:
                d.stop()
    finally:
        for server in (ntfy, gotify, target):
            server.close()


def test_a_json_target_that_refuses_twice_gets_both_transitions(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, healthd_cli: Any
) -> None:
    hook, target = Hook(refuse=2), Target()
    try:
        add_source(db, "web", target.url)
        tid = _added(healthd_cli("notifications", "add", f"json://{hook.host}/hook"))
        d = DaemonProcess(db_url, tmp_path / "d.log", **FAST)
        try:
            wait_for(lambda: len(hook.docs()) == 1, what="the first refusal")

            def refused_in_log() -> bool:
                r = healthd_cli("notifications", "deliveries", "--json")
                rows = json.loads(r.stdout)["deliveries"]
                return (
                    bool(rows)
                    and rows[0]["state"] == "pending"
                    and "500" in (rows[0]["last_error"] or "")
                )

            wait_for(refused_in_log, what="the refusal in the delivery log")
            wait_for(lambda: _rows(db, tid) == [("connected", 3, True)], what="the 3rd attempt")
            target.set("fail")
            wait_for(lambda: status_of(db, "web") == "error", what="web in error")
            wait_for(lambda: len(_rows(db, tid)) == 2 and _rows(db, tid)[1][2], what="2nd sent")
            docs = hook.docs()
            assert [x["title"] for x in docs] == ["WEB: unknown → connected"] * 3 + [
                "WEB: connected → error"
            ]
            assert [docs[0]["type"], docs[-1]["type"]] == ["success", "failure"]
            log = json.loads(healthd_cli("notifications", "deliveries", "--json").stdout)
            assert [(r["state"], r["attempts"]) for r in log["deliveries"]] == [
                ("delivered", 1),
                ("delivered", 3),
            ]
            assert log["deliveries"][0]["url"] == f"json://{hook.host}"
        finally:
            assert d.stop() == 0
    finally:
        hook.close()
        target.close()


def test_to_error_holds_for_an_apprise_target(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path, healthd_cli: Any
) -> None:
    only_errors, everything, target = Hook(), Hook(), Target()
    try:
        add_source(db, "web", target.url)
        add = ("notifications", "add")
        e = _added(healthd_cli(*add, f"json://{only_errors.host}/", "--to", "error"))
        _added(healthd_cli(*add, f"json://{everything.host}/"))
        d = DaemonProcess(db_url, tmp_path / "d.log", **FAST)
        try:
            wait_for(lambda: status_of(db, "web") == "connected", what="web connected")
            target.set("fail")
            wait_for(lambda: status_of(db, "web") == "error", what="web in error")
            target.set("ok")
            wait_for(
                lambda: any(x["title"] == "WEB: error → connected" for x in everything.docs()),
                what="the recovery at the catch-all target",
            )
            wait_for(lambda: _rows(db, e) and _rows(db, e)[0][2], what="the error delivered")
            assert [x["title"] for x in only_errors.docs()] == ["WEB: connected → error"]
            assert [row[0] for row in _rows(db, e)] == ["error"]
        finally:
            assert d.stop() == 0
    finally:
        for server in (only_errors, everything, target):
            server.close()


def test_the_test_button_sends_one_message_and_says_what_was_answered(
    db: psycopg.Connection[Any], cli: Any
) -> None:
    hook, webhook = Hook(), Hook()
    try:
        t = _added(cli("notifications", "add", f"json://{hook.host}/t"))
        w = _added(cli("notifications", "add", webhook.base + "/hook"))
        r = cli("notifications", "test", str(t))
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"target {t} (json://{hook.host}/...) accepted the test message")
        assert [x["title"] for x in hook.docs()] == ["healthd: a test message"]
        r = cli("notifications", "test", str(w))
        assert r.returncode == 0 and "accepted the test message: HTTP 200" in r.stdout, r
        assert webhook.requests[0]["headers"]["x-healthd-event"] == "test"

        hook.refuse = 1
        one_line_error(cli("notifications", "test", str(t)), "refused the test message", "500")
        assert len(hook.docs()) == 2
        # the alias is the same group
        assert cli("webhooks", "test", str(t)).returncode == 0
        r_ref = cli("notifications", "add", "--url-env", "NOT_HERE", "--format", "apprise")
        ref = _added(r_ref)
        one_line_error(cli("notifications", "test", str(ref)), '{"env": "NOT_HERE"}', "not set")
        assert db.execute("SELECT count(*) FROM webhook_outbox").fetchone() == (0,)
    finally:
        hook.close()
        webhook.close()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("foo://x",), "URL: must start with http:// or https://, or be a URL Apprise knows"),
        (("foo://x",), "foo://"),
        (("mailto://",), "URL: Apprise cannot use this mailto:// URL"),
        (("json://127.0.0.1:9/", "--secret-env", "S"), "an Apprise target is not signed"),
        (("http://127.0.0.1:9/", "--format", "apprise"), "an http(s) URL is a webhook"),
        (("json://127.0.0.1:9/", "--format", "slack"), "must start with http://"),
        (("--url-env", "NOT_SET_ANYWHERE"), "--format: the URL of --url-env cannot be read"),
        (("json://a", "--url-env", "X"), "URL: give the URL, or --url-env NAME"),
    ],
)
def test_a_target_apprise_cannot_use_is_refused_at_add(
    db: psycopg.Connection[Any], cli: Any, args: tuple[str, ...], needle: str
) -> None:
    one_line_error(cli("notifications", "add", *args), needle)
    assert db.execute("SELECT count(*) FROM webhooks").fetchone() == (0,)


def test_a_url_by_reference_is_checked_when_it_can_be_read(
    db: psycopg.Connection[Any], cli: Any, tmp_path: Path
) -> None:
    secret = "foo://token-4242-secret"
    r = cli("notifications", "add", "--url-env", "TARGET", env={"TARGET": secret})
    one_line_error(r, "--url-env: must start with http:// or https://", "foo://")
    assert "token-4242" not in r.stderr
    r = cli("notifications", "add", "--url-env", "TARGET", env={"TARGET": "json://127.0.0.1:9/"})
    assert r.stdout.strip() == "added apprise target 1", r.stderr
    hook = "https://hooks.example.com/services/T/B/secret-path"
    r = cli("notifications", "add", "--url-env", "HOOK", "--format", "slack", env={"HOOK": hook})
    assert r.stdout.strip() == "added webhook 2", r.stderr
    hook_server = Hook()
    try:
        (tmp_path / "target-url").write_text(f"json://{hook_server.host}/by-file\n")
        r = cli("notifications", "add", "--url-file", str(tmp_path / "target-url"))
        assert r.stdout.strip() == "added apprise target 3", r.stderr
        r = cli("notifications", "test", "3")
        assert r.returncode == 0 and "accepted the test message" in r.stdout, r
        assert hook_server.requests[0]["path"] == "/by-file"
        assert "by-file" not in r.stdout and "127.0.0.1" not in r.stdout
    finally:
        hook_server.close()
    listed = cli("notifications", "list").stdout
    assert "(URL in $TARGET)" in listed and "(URL in $HOOK)" in listed
    assert f"(URL in file {tmp_path / 'target-url'})" in listed
    assert "hooks.example.com" not in listed and "127.0.0.1" not in listed


def test_apprise_sends_are_cut_at_their_timeout_and_bounded_in_number() -> None:
    import asyncio
    import time

    from healthd.notify import apprise_target, message

    arrived: list[float] = []
    release = threading.Event()

    def hang(req: Request) -> Answer:
        arrived.append(time.monotonic())
        release.wait(5)  # a target that hangs (far past the attempt's timeout)
        # no body: the one write of the headers to a connection the client has closed
        # succeeds (a second would raise EPIPE in the server's thread)
        return 200, {}, b""

    server = Scripted(hang)
    url = f"json://{server.base.removeprefix('http://')}/"
    size = apprise_target.POOL_SIZE

    async def many() -> list[apprise_target.Outcome]:
        msg = message.Message("t", "b")
        return await asyncio.gather(
            *(apprise_target.send(url, msg, "info", 0.5) for _ in range(size + 2))
        )

    try:
        apprise_target.check(url)  # Apprise's plugins loaded (once, ~1 s) before the clock
        started = time.monotonic()
        outcomes = asyncio.run(many())
        took = time.monotonic() - started
        assert not any(o.ok for o in outcomes) and all(o.answer for o in outcomes)
        # each waited at most 0.5 s for a slot and 0.5 s for the target
        assert took < 2.0, took
        # no more than POOL_SIZE at once: a send past them started only when one was cut
        assert len(arrived) >= size
        assert all(at - started >= 0.45 for at in sorted(arrived)[size:]), arrived
    finally:
        release.set()
        server.close()
