"""The message a person reads (healthd/notify/message.py), how a target's URL is shown
(healthd/notify/urls.py) and what of an Apprise URL is scrubbed from its answers
(healthd/notify/apprise_target.py): pure, no server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from healthd.notify import apprise_target, message
from healthd.notify.urls import by_reference, origin, shown_delivery, shown_url

EVENT = {
    "id": 7,
    "event": "transition",
    "source_id": "web",
    "source_name": "Web shop",
    "from": "connected",
    "to": "error",
    "at": "2025-03-04T05:06:07.123456Z",
    "message": "HTTP 500 from the shop",
}


def test_a_transition_reads_as_a_title_and_a_body() -> None:
    m = message.compose(EVENT, "https://status.example.com/")
    assert m.title == "Web shop: connected → error"
    assert m.body.splitlines() == [
        "Web shop (web) is error; it was connected.",
        "Since: 2025-03-04 05:06:07 UTC",
        "Message: HTTP 500 from the shop",
        "Status page: https://status.example.com/status/web",
    ]


def test_a_recovery_has_no_stale_message_and_no_link_without_a_public_url() -> None:
    m = message.compose({**EVENT, "from": "error", "to": "connected", "message": "ok"})
    assert m.title == "Web shop: error → connected"
    assert m.body.splitlines() == [
        "Web shop (web) is connected; it was error.",
        m.body.splitlines()[1],
    ]


def test_flapping_is_worded_for_a_person() -> None:
    started = message.compose({**EVENT, "event": "flapping_started", "from": "error"})
    assert started.title == "Web shop: flapping"
    assert "is flapping: its status keeps changing" in started.body
    assert "Its status now: error." in started.body
    stopped = message.compose({**EVENT, "event": "flapping_stopped", "source_name": "web"})
    assert stopped.title == "web: stopped flapping"
    assert stopped.body.startswith("web has settled.")


def test_a_long_probe_message_is_cut_and_a_source_id_is_quoted_in_the_link() -> None:
    m = message.compose({**EVENT, "message": "x" * 5000, "source_id": "a b/c"}, "http://h")
    line = next(x for x in m.body.splitlines() if x.startswith("Message: "))
    assert len(line) == len("Message: ") + message.MESSAGE_CHARS
    assert "Status page: http://h/status/a%20b%2Fc" in m.body


def test_the_test_message() -> None:
    payload = message.test_payload(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert payload["at"] == "2025-01-02T03:04:05.000000Z"
    m = message.compose(payload, "https://s.example.com")
    assert m.title == "healthd: a test message"
    assert "https://s.example.com/status" in m.body


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ntfy://ntfy.example.com/alerts?token=tk_1", "ntfy://ntfy.example.com"),
        ("gotify://127.0.0.1:8080/AToken", "gotify://127.0.0.1:8080"),
        ("mailtos://user:pw@smtp.example.com:587?to=a@b.c", "mailtos://smtp.example.com:587"),
        ("json://localhost:9000/hook", "json://localhost:9000"),
        ("json://[::1]:9000/hook", "json://[::1]:9000"),
        # the host is the credential: only the scheme is shown
        ("tgram://123456:ABCdefSECRET/987654", "tgram://…"),
        ("discord://1234567/abcdSECRET", "discord://…"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", "slack://…"),
        ("pagerduty://intkey@apikey", "pagerduty://…"),
        ("opsgenie://apikeysecret", "opsgenie://…"),
        ("https://hooks.slack.com/services/T/B/X", "https://hooks.slack.com"),
    ],
)
def test_a_target_is_shown_as_its_scheme_and_host_only(url: str, shown: str) -> None:
    assert origin(url) == shown
    assert shown_url(url, "apprise").startswith(shown)
    assert "SECRET" not in shown_url(url, "apprise") and "token" not in shown_url(url, "apprise")


def test_a_url_by_reference_is_shown_as_its_reference() -> None:
    assert by_reference({"env": "NTFY_URL"}) == "(URL in $NTFY_URL)"
    assert by_reference({"file": "ntfy-url"}) == "(URL in file ntfy-url)"
    assert shown_url(None, "apprise", {"env": "X"}) == "(URL in $X)"
    row = {"url": None, "url_ref": {"env": "X"}, "last_error": "refused"}
    assert shown_delivery(row) == {"url": "(URL in $X)", "last_error": "refused"}


def test_every_credential_of_an_apprise_url_is_scrubbed_from_its_answers() -> None:
    url = "ntfys://bob:hunter2pw@ntfy.example.com/alerts-42?token=tk_abcdef&priority=high"
    said = (
        f"Failed to send to {url}: user bob:hunter2pw, token tk_abcdef, topic alerts-42,"
        " masked h...2 by Apprise, at ntfy.example.com"
    )
    clean = apprise_target.scrub(said, url)
    for secret in ("bob", "hunter2pw", "tk_abcdef", "alerts-42", "h...2", url):
        assert secret not in clean, clean
    assert "ntfy.example.com" in clean  # the host names a host: kept
    tg = "tgram://123456:ABCdefSECRET/987654"
    assert "ABCdef" not in apprise_target.scrub(f"bad bot 123456:ABCdefSECRET for {tg}", tg)
