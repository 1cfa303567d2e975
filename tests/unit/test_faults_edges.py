"""Issue 10, the edge items that need no server: numbers, ids, messages, redaction, the
documented backoff total, the OpenAPI document."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from healthd import plugins
from healthd.config import settings
from healthd.config.sources import validate
from healthd.core import dburl
from healthd.core.errors import ConfigError
from healthd.core.secrets import scrub, strip_url_credentials
from healthd.notify.sender import total_backoff
from healthd.plugins.command import first_line

ROOT = Path(__file__).resolve().parents[2]


# -- 5: every number finite and in range, from every door ----------------------------


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("HEALTHD_INTERVAL", "nan"),
        ("HEALTHD_INTERVAL", "inf"),
        ("HEALTHD_INTERVAL", "-5"),
        ("HEALTHD_INTERVAL", "0"),
        ("HEALTHD_INTERVAL", "1e9"),
        ("HEALTHD_RETRY_INTERVAL", "NaN"),
        ("HEALTHD_TIMEOUT", "-inf"),
        ("HEALTHD_RISE", "100000"),
        ("HEALTHD_CONCURRENCY", "0"),
    ],
)
def test_environment_refuses_nan_inf_and_out_of_range(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings.load({name: raw})
    assert str(err.value).startswith(name + ":")


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("interval", math.nan),
        ("interval", -5.0),
        ("interval", 0.0),
        ("interval", math.inf),
        ("retry_interval", math.nan),
        ("timeout", -1.0),
        ("concurrency", 0),
        ("db_timeout", math.nan),
        ("history_days", 0),
    ],
)
def test_cli_flags_go_through_the_same_checks(flag: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        settings.load({}, **{flag: value})
    assert str(err.value).startswith("--" + flag.replace("_", "-") + ":")


def test_good_flags_still_apply() -> None:
    s = settings.load({"HEALTHD_INTERVAL": "2"}, interval=5.0, rise=2)
    assert s.interval == 5.0 and s.rise == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interval_s", math.nan),
        ("interval_s", math.inf),
        ("interval_s", -5),
        ("timeout_s", 0),
        ("retry_interval_s", 10**400),
        ("rise", 10**6),
    ],
)
def test_source_numbers_finite_and_in_range(field: str, value: Any) -> None:
    entry = {"id": "a", "plugin": "tcp", "config": {"host": "h", "port": 1}, field: value}
    with pytest.raises(ConfigError) as err:
        validate(entry, "entry 1")
    assert str(err.value).startswith(f"entry 1 (id 'a'): {field}: must be")
    assert len(str(err.value)) < 200


# -- 13 / 16: ids a URL path segment carries ----------------------------------------


@pytest.mark.parametrize(
    "sid", ["web\n", "team/db", "a b", ".", "..", "", "-x", "é", "a" * 51, "a?b", "a#b", "a%2F"]
)
def test_ids_are_url_path_segments(sid: str) -> None:
    with pytest.raises(ConfigError, match="id: must be 1-50 characters"):
        validate({"id": sid, "plugin": "tcp", "config": {"host": "h", "port": 1}})


@pytest.mark.parametrize("sid", ["web", "ai-connection", "db_1", "pg:5432", "a.b", "A~1", "a" * 50])
def test_ids_in_use_still_valid(sid: str) -> None:
    assert validate({"id": sid, "plugin": "tcp", "config": {"host": "h", "port": 1}}).id == sid


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"name": "a\x00b"}, "name"),
        ({"type": "x\ud800"}, "type"),
        ({"config": {"host": "h\x00", "port": 1}}, "config.host"),
    ],
)
def test_what_postgres_refuses_is_refused_naming_the_field(
    entry: dict[str, Any], field: str
) -> None:
    full = {"id": "a", "plugin": "tcp", "config": {"host": "h", "port": 1}, **entry}
    with pytest.raises(ConfigError) as err:
        validate(full, "entry 3")
    assert str(err.value).startswith(f"entry 3 (id 'a'): {field}: must")


# -- 13 / 15 / 19: command messages ---------------------------------------------------


@pytest.mark.parametrize("out", [b"\x1c", b"\x1c\n", b"\x1f\x1e\x1d", b"\xc2\x85", b"  \n\n"])
def test_control_character_only_output_is_no_line(out: bytes) -> None:
    assert first_line(out) == ""


def test_first_line_keeps_perfdata() -> None:
    out = b"DISK WARNING - free space: / 9% | /=91%;80;90;0;100\nlong text | more=1\n"
    assert first_line(out) == "DISK WARNING - free space: / 9% | /=91%;80;90;0;100"


# -- 11: redaction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://admin:p@ssw0rd@host/", "https://host/"),
        (
            "see https://u:a@b@c@example.com:8443/x?y=1 now",
            "see https://example.com:8443/x?y=1 now",
        ),
        ("postgresql://app:s3@cr@t@db:5432/app", "postgresql://db:5432/app"),
        ("https://host/path?email=a@b.c", "https://host/path?email=a@b.c"),
    ],
)
def test_url_credentials_parsed_as_the_client_does(text: str, shown: str) -> None:
    assert strip_url_credentials(text) == shown
    assert "ssw0rd" not in scrub(text, [])


def test_argv_and_send_hold_references_redacted_and_resolved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGE_PW", "hunter2-edge")
    cfg = {"argv": ["mysql", "--password", {"env": "EDGE_PW"}]}
    plugin = plugins.create("command", cfg)
    assert plugin.resolved()["argv"] == ["mysql", "--password", "hunter2-edge"]
    assert "hunter2-edge" in plugin.probe_secrets()
    assert plugins.redact("command", plugin.config)["argv"] == cfg["argv"]  # not the value
    tcp = plugins.create("tcp", {"host": "h", "port": 6379, "send": {"env": "EDGE_PW"}})
    assert tcp.resolved()["send"] == "hunter2-edge" and "hunter2-edge" in tcp.probe_secrets()
    assert plugins.redact("tcp", tcp.config)["send"] == {"env": "EDGE_PW"}
    with pytest.raises(ConfigError, match="config.argv"):
        plugins.create("command", {"argv": ["x", {"nope": 1}]})


@pytest.mark.parametrize(
    "url",
    [
        "password=s3cr3t host=/nonexistent leak",
        "host=localhost password='s3cr3t",
        "postgresql://u:s3cr3t@local host:5/db",
        "postgresql://u:s3cr3t@h/%zz",
    ],
)
def test_malformed_connection_string_named_without_a_fragment(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings.load({"HEALTHD_DATABASE_URL": url}).require_database_url()
    text = str(err.value)
    assert text.startswith("HEALTHD_DATABASE_URL: is not a valid libpq URL")
    for fragment in ("s3cr3t", "leak", "local host", "%zz"):
        assert fragment not in text


def test_auth_failure_is_named() -> None:
    exc = Exception(
        'connection failed: connection to server at "127.0.0.1", port 5 failed: '
        'FATAL:  password authentication failed for user "app"'
    )
    assert dburl.is_auth_failure(exc)
    assert dburl.describe(exc).startswith(
        'authentication failed: password authentication failed for user "app"'
    )
    assert not dburl.is_auth_failure(Exception("connection refused"))


# -- 14: the documented backoff total is the code's -------------------------------------


def test_readme_backoff_total_is_computed_from_the_code() -> None:
    low, high = total_backoff()
    assert (low, high) == (7447.0, 14894.0)

    def hm(s: float) -> str:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"

    doc = " ".join((ROOT / "docs" / "notifications.md").read_text().split())
    assert f"{hm(low)} to {hm(high)} of waiting" in doc
    assert "about 5 hours" not in doc


# -- 17: gunicorn's own errors are JSON ------------------------------------------------


def test_gunicorn_error_writer_is_json() -> None:
    from statusapi.web.gunicorn_worker import json_error

    raw = json_error(414, "URI Too Long", "x" * 10_000)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 URI Too Long")
    assert b"Content-Type: application/json" in head
    assert int(re.search(rb"Content-Length: (\d+)", head).group(1)) == len(body)  # type: ignore[union-attr]
    assert json.loads(body)["error"]["code"] == "uri_too_long"


# -- 18: the OpenAPI document agrees with behaviour ---------------------------------


def test_openapi_stream_is_an_event_stream_and_nul_is_excluded() -> None:
    from statusapi.openapi.document import document

    doc = document()
    content = doc["paths"]["/api/v1/stream"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"text/event-stream"}
    assert content["text/event-stream"].get("schema") != {"type": "string"}
    item = content["text/event-stream"]["itemSchema"]
    assert item["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/Event"}
    params = doc["paths"]["/api/v1/sources"]["get"]["parameters"]
    cursor = next(p for p in params if p["name"] == "cursor")
    pattern = cursor["schema"]["pattern"]
    assert re.match(pattern, "web") and not re.match(pattern, "we\x00b")
    sid = doc["paths"]["/api/v1/sources/{source_id}"]["get"]["parameters"][0]["schema"]
    assert not re.match(sid["pattern"], "\x00")


# -- 7: the stream cap stays below the worker's threads --------------------------------


@pytest.mark.parametrize(
    ("env", "cap"),
    [
        ({}, 224),
        ({"STATUSAPI_THREADS": "8"}, 6),
        ({"STATUSAPI_THREADS": "4"}, 2),
        ({"STATUSAPI_THREADS": "2"}, 0),
        ({"STATUSAPI_THREADS": "64", "STATUSAPI_STREAM_MAX": "10"}, 10),
    ],
)
def test_stream_cap_below_the_thread_count(env: dict[str, str], cap: int) -> None:
    from statusapi.web.config import from_env

    assert from_env(env)["STREAM_MAX"] == cap


@pytest.mark.parametrize("raw", ["lots", "-1", "nan"])
def test_stream_cap_bad_value_names_the_variable(raw: str) -> None:
    from statusapi.web.config import from_env

    with pytest.raises(ConfigError, match="^STATUSAPI_STREAM_MAX: must be"):
        from_env({"STATUSAPI_STREAM_MAX": raw})
