"""Maintenance window parsing and overlap, dependency checks, webhook body formats: pure."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, time, timedelta

import pytest

from healthd.core import dependencies, maintenance
from healthd.core.errors import ConfigError
from healthd.notify.formats import slack_text
from healthd.notify.sender import MAX_ATTEMPTS, answer_text, gives_up, request_for
from healthd.notify.urls import origin, without_path

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def test_durations() -> None:
    assert maintenance.parse_duration("30m", "--for") == timedelta(minutes=30)
    assert maintenance.parse_duration("2h30m", "--for") == timedelta(hours=2, minutes=30)
    assert maintenance.parse_duration("1d", "--for") == timedelta(days=1)
    assert maintenance.parse_duration("45", "--for") == timedelta(minutes=45)
    for bad in ("", "0m", "m", "1x", "-5m", "1h 30m"):
        with pytest.raises(ConfigError, match="--for"):
            maintenance.parse_duration(bad, "--for")


def test_every() -> None:
    assert maintenance.parse_every("sun 02:00") == (0, time(2, 0), None)
    assert maintenance.parse_every("Saturday 23:30 Europe/Berlin") == (
        6,
        time(23, 30),
        "Europe/Berlin",
    )
    assert maintenance.parse_every("daily 04:15") == (None, time(4, 15), None)
    for bad in ("sun", "sunday 25:00", "sun 02:00 Mars/Base", "02:00 UTC extra"):
        with pytest.raises(ConfigError):
            maintenance.parse_every(bad)


def test_one_off_windows_and_their_errors() -> None:
    w = maintenance.build(("web",), NOW, None, None, "30m", None, None, "")
    assert (w.starts_at, w.ends_at) == (NOW, NOW + timedelta(minutes=30))
    with pytest.raises(ConfigError, match="--end: .* is not after --start"):
        maintenance.build(
            ("web",), NOW, "2026-12-01T10:00", "2026-12-01T09:00", None, None, None, ""
        )
    with pytest.raises(ConfigError, match="in the past"):
        maintenance.build(("web",), NOW, "2026-01-01", "2026-01-02", None, None, None, "")
    with pytest.raises(ConfigError, match="either --end or --for"):
        maintenance.build(("web",), NOW, None, None, None, None, None, "")


def test_recurring_windows() -> None:
    w = maintenance.build(None, NOW, None, None, "1h", "sun 02:00", None, "patching")
    assert w.describe() == "every sun 02:00 UTC for 1h"
    first = next(maintenance.occurrences(w, NOW, NOW + timedelta(days=30)))
    assert first == (
        datetime(2026, 11, 29, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 29, 3, tzinfo=UTC),
    )
    with pytest.raises(ConfigError, match="shorter than the recurrence"):
        maintenance.build(None, NOW, None, None, "1d", "daily 02:00", None, "")
    berlin = maintenance.build(None, NOW, None, None, "1h", "sun 02:00", "Europe/Berlin", "")
    s, _ = next(maintenance.occurrences(berlin, NOW, NOW + timedelta(days=30)))
    assert s == datetime(2026, 11, 29, 1, 0, tzinfo=UTC)  # CET is UTC+1 in November


def test_overlap() -> None:
    weekly = maintenance.build(("web",), NOW, None, None, "1h", "sun 02:00", None, "")
    inside = maintenance.build(("web",), NOW, "2026-11-29T02:30:00Z", None, "2h", None, None, "")
    apart = maintenance.build(("web",), NOW, "2026-11-29T03:00:00Z", None, "2h", None, None, "")
    daily = maintenance.build(("web",), NOW, None, None, "30m", "daily 02:45", None, "")
    assert maintenance.overlap(inside, weekly, NOW) is not None
    assert maintenance.overlap(apart, weekly, NOW) is None  # [02:00, 03:00) meets [03:00, ..)
    assert maintenance.overlap(daily, weekly, NOW) is not None
    assert maintenance.shares_sources(
        weekly, maintenance.build(None, NOW, None, None, "5m", None, None, "")
    )


def test_dependency_checks() -> None:
    dependencies.check({"a": ["b"], "b": []}, ["a"])
    with pytest.raises(ConfigError, match="depends_on: unknown source 'x'"):
        dependencies.check({"a": ["x"]}, ["a"])
    with pytest.raises(ConfigError, match="dependency cycle a -> b -> c -> a"):
        dependencies.check({"a": ["b"], "b": ["c"], "c": ["a"]}, ["a"])
    assert dependencies.parse_ids(" a, b,,") == ["a", "b"]


DELIVERY = {
    "delivery_id": "6f1d2b5e-0000-4000-8000-000000000001",
    "event": "transition",
    "payload": {
        "id": 7,
        "event": "transition",
        "source_id": "web",
        "source_name": "Web",
        "from": "connected",
        "to": "error",
        "at": "2026-11-25T12:00:00+00:00",
        "message": "HTTP 500",
    },
    "secret_ref": None,
    "format": "slack",
}


def test_slack_body_is_text_only() -> None:
    body, headers = request_for(DELIVERY)
    assert body == b'{"text":"healthd: Web (web) is error (was connected): HTTP 500"}'
    assert headers["Content-Type"] == "application/json"
    assert "flapping" in slack_text({**DELIVERY["payload"], "event": "flapping_started"})


def test_slack_text_escapes_what_slack_reads_as_markup() -> None:
    payload = {**DELIVERY["payload"], "source_name": "A&B <!here>", "message": "<a|b> > 1"}
    assert slack_text(payload) == (
        "healthd: A&amp;B &lt;!here&gt; (web) is error (was connected): &lt;a|b&gt; &gt; 1"
    )


def test_which_refusals_are_given_up_early() -> None:
    for status in (400, 401, 403, 404, 410, 413, 422):
        assert not gives_up(2, status) and gives_up(3, status)
    for status in (None, 408, 425, 429, 500, 502, 301):
        assert not gives_up(3, status) and gives_up(MAX_ATTEMPTS, status)


def test_a_receivers_answer_is_one_short_line() -> None:
    assert answer_text(b"") == ""
    assert answer_text(b'bad\r\n  request\x00 "x"') == 'bad request "x"'
    long = answer_text(b"x" * 5000)
    assert len(long) == 201 and long.endswith("…")
    assert answer_text(b"\xff\xfeok") == "\ufffd\ufffdok"


def test_standard_signature_verifies_with_the_reference_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from standardwebhooks import Webhook

    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    monkeypatch.setenv("STD_SECRET", secret)
    d = {**DELIVERY, "format": "standard", "secret_ref": {"env": "STD_SECRET"}}
    body, headers = request_for(d)
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "healthd.transition" and payload["data"]["to"] == "error"
    monkeypatch.setenv("STD_SECRET", "not-a-whsec")
    with pytest.raises(ValueError, match="whsec_"):
        request_for(d)


def test_origin_hides_the_path() -> None:
    url = "https://hooks.slack.com/services/T000/B000/XXXX?x=1"
    assert origin(url) == "https://hooks.slack.com"
    assert origin("http://user:pw@127.0.0.1:8080/a") == "http://127.0.0.1:8080"
    assert "XXXX" not in without_path(
        "timed out (https://hooks.slack.com/services/T000/B000/XXXX)", url
    )
