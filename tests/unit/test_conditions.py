"""Conditions on an HTTP answer (healthd/plugins/conditions.py): validated with a message
naming the field, judged with a message naming the condition and what was seen."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from healthd.config.sources import read_file, validate, validate_all
from healthd.core.errors import ConfigError
from healthd.plugins import conditions
from healthd.plugins.conditions import Answer

URL = "https://api.example.com/health"


def parse(**given: Any) -> conditions.Conditions:
    return conditions.parse({"url": URL, "verify_tls": True, **given})


def judge(conds: conditions.Conditions, body: Any = None, **answer: Any) -> str | None:
    raw = json.dumps(body).encode() if body is not None else b""
    return conditions.evaluate(conds, Answer(200, raw, **answer))


def test_no_conditions_is_falsy() -> None:
    conds = parse()
    assert not conds and not conds.needs_body and not conds.needs_cert


def test_expect_json_equals_and_exists() -> None:
    conds = parse(
        expect_json=[
            {"path": "status", "equals": "UP"},
            {"path": "components.db.status", "equals": "UP"},
            {"path": "version", "exists": True},
        ]
    )
    assert conds.needs_body
    good = {"status": "UP", "components": {"db": {"status": "UP"}}, "version": "1.2"}
    assert judge(conds, good) is None
    assert judge(conds, {**good, "status": "DOWN"}) == "status is 'DOWN', expected 'UP'"
    assert judge(conds, {"status": "UP", "components": {}}) == (
        "components.db.status is missing, expected 'UP'; version is missing"
    )


def test_equals_is_json_equality() -> None:
    conds = parse(expect_json=[{"path": "n", "equals": 1}, {"path": "ok", "equals": True}])
    assert judge(conds, {"n": 1.0, "ok": True}) is None
    # Python says True == 1; JSON does not
    assert judge(conds, {"n": True, "ok": 1}) == "n is true, expected 1; ok is 1, expected true"
    listed = parse(expect_json=[{"path": "tags", "equals": ["a", "b"]}])
    assert judge(listed, {"tags": ["a", "b"]}) is None
    assert judge(listed, {"tags": ["a"]}) == 'tags is ["a"], expected ["a", "b"]'


def test_exists_false_and_length_functions() -> None:
    conds = parse(
        expect_json=[{"path": "error", "exists": False}, {"path": "length(items)", "equals": 2}]
    )
    assert judge(conds, {"items": [1, 2]}) is None
    assert judge(conds, {"error": "boom", "items": []}) == (
        "error is 'boom', expected nothing; length(items) is 0, expected 2"
    )


def test_a_body_that_is_not_json_or_too_long() -> None:
    conds = parse(expect_json=[{"path": "status", "equals": "UP"}])
    assert conditions.evaluate(conds, Answer(200, b"<html>")) == (
        "expect_json: the body is not JSON"
    )
    cut = Answer(200, b'{"status": "UP", "pad": "' + b"x" * 100, body_complete=False)
    assert "longer than the" in (conditions.evaluate(conds, cut) or "")


def test_a_long_value_is_cut_in_the_message() -> None:
    conds = parse(expect_json=[{"path": "s", "equals": "UP"}])
    message = judge(conds, {"s": "x" * 10_000}) or ""
    assert len(message) < 200 and message.endswith("expected 'UP'")


def test_max_latency() -> None:
    conds = parse(max_latency_ms=500)
    assert judge(conds, elapsed_ms=499.9) is None
    assert judge(conds, elapsed_ms=812.4) == "answered in 812 ms, over 500 ms"


def test_min_cert_days() -> None:
    conds = parse(min_cert_days=14)
    assert conds.needs_cert
    expires = datetime(2027, 1, 5, tzinfo=UTC)
    assert judge(conds, cert_days=20.0, cert_expires=expires) is None
    assert judge(conds, cert_days=4.96, cert_expires=expires) == (
        "the TLS certificate has 5.0 days left (expires 2027-01-05), under 14"
    )
    # no certificate read (the second handshake failed): not a failure of its own
    assert judge(conds) is None


def test_every_failure_is_named_in_one_line() -> None:
    conds = parse(expect_json=[{"path": "status", "equals": "UP"}], max_latency_ms=100)
    message = judge(conds, {"status": "DOWN"}, elapsed_ms=250) or ""
    assert message == "status is 'DOWN', expected 'UP'; answered in 250 ms, over 100 ms"
    assert "\n" not in message


@pytest.mark.parametrize(
    ("given", "field", "problem"),
    [
        (
            {"expect_json": [{"path": "status[", "equals": "UP"}]},
            "config.expect_json[0].path",
            "'status[' is not a valid JMESPath expression (it ends too soon at column 7)",
        ),
        (
            {"expect_json": [{"path": "a", "equals": 1}, {"path": "a..b", "exists": True}]},
            "config.expect_json[1].path",
            "is not a valid JMESPath expression",
        ),
        ({"expect_json": [{"equals": 1}]}, "config.expect_json[0].path", "is required"),
        ({"expect_json": [{"path": "a"}]}, "config.expect_json[0]", "exactly one of"),
        (
            {"expect_json": [{"path": "a", "equals": 1, "exists": True}]},
            "config.expect_json[0]",
            "exactly one of",
        ),
        (
            {"expect_json": [{"path": "a", "exists": "yes"}]},
            "config.expect_json[0].exists",
            "true or false",
        ),
        (
            {"expect_json": [{"path": "a", "equal": 1}]},
            "config.expect_json[0].equal",
            "unknown key",
        ),
        ({"max_latency_ms": 0}, "config.max_latency_ms", "positive number of milliseconds"),
        ({"min_cert_days": -1}, "config.min_cert_days", "positive number of days"),
        ({"min_cert_days": 7, "url": "http://x/"}, "config.min_cert_days", "https:// URLs only"),
        ({"min_cert_days": 7, "verify_tls": False}, "config.min_cert_days", "needs verify_tls"),
    ],
)
def test_bad_conditions_name_the_field(given: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(**given)
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert "\n" not in str(caught.value)


def test_sources_add_and_import_refuse_a_bad_expression(tmp_path: Path) -> None:
    """What `sources add` and `sources import` run (healthd/config/sources.py): one line
    naming the source and the field, before anything is written."""
    entry = {
        "id": "api",
        "plugin": "http",
        "config": {"url": URL, "expect_json": [{"path": "status[", "equals": "UP"}]},
    }
    with pytest.raises(ConfigError) as caught:
        validate(entry)
    assert str(caught.value).startswith("config.expect_json[0].path: 'status[' is not a valid")
    path = tmp_path / "sources.toml"
    path.write_text(
        '[[sources]]\nid = "ok"\nplugin = "http"\nconfig = { url = "https://a/" }\n\n'
        '[[sources]]\nid = "api"\nplugin = "http"\n'
        'config = { url = "https://a/", expect_json = [{ path = "a..b", exists = true }] }\n'
    )
    with pytest.raises(ConfigError) as caught:
        validate_all(read_file(path))
    message = str(caught.value)
    assert message.startswith("entry 2 (id 'api'): config.expect_json[0].path: 'a..b' is not")
    assert "\n" not in message
    # a good entry passes through unchanged
    entry["config"]["expect_json"] = [{"path": "status", "equals": "UP"}]
    assert validate(entry).config["expect_json"] == [{"path": "status", "equals": "UP"}]


def test_describe_reads_as_a_person_would() -> None:
    config = {
        "url": URL,
        "expect_json": [{"path": "status", "equals": "UP"}, {"path": "v", "exists": True}],
        "max_latency_ms": 500,
        "min_cert_days": 14,
    }
    assert conditions.describe({**config, "expect_status": [200, 204], "body_contains": "ok"}) == [
        "HTTP status 200 or 204",
        "body contains 'ok'",
        "JSON status equals 'UP'",
        "JSON v exists",
        "answers within 500 ms",
        "TLS certificate valid for at least 14 more days",
    ]
    assert conditions.describe({"url": URL}) == ["HTTP status 2xx or 3xx"]
