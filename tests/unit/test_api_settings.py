"""The API's settings: typed, fail-fast, one line naming the variable (no database)."""

from __future__ import annotations

import pytest

from healthd.core.errors import ConfigError
from statusapi import create_app
from statusapi.web import config


def test_defaults_and_values() -> None:
    api = config.load({"HEALTHD_DATABASE_URL": "postgresql:///d", "HEALTHD_RISE": "4"})
    assert api.database_url == "postgresql:///d" and api.default_rise == 4
    assert (api.heartbeat_max_age, api.pool_max, api.stream_poll, api.stream_keepalive) == (
        30.0,
        8,
        0.1,
        15.0,
    )
    env = {
        "HEALTHD_DATABASE_URL": "postgresql:///d",
        "STATUSAPI_DATABASE_URL": "postgresql:///ro",
        "STATUSAPI_CORS_ORIGINS": " https://a.example ,, *",
        "STATUSAPI_POOL_MAX": " 3 ",
        "STATUSAPI_HEARTBEAT_MAX_AGE": "2.5",
    }
    api = config.load(env)
    assert api.database_url == "postgresql:///ro" and api.pool_max == 3
    assert api.cors_origins == ("https://a.example", "*") and api.heartbeat_max_age == 2.5
    assert "tokens" not in repr(config.load({"STATUSAPI_TOKENS": "s3cr3t"}))
    assert api.metrics_max_sources == 10_000
    assert config.load({"STATUSAPI_METRICS_MAX_SOURCES": "0"}).metrics_max_sources == 0


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("STATUSAPI_POOL_MAX", "eight"),
        ("STATUSAPI_POOL_MAX", "0"),
        ("STATUSAPI_HEARTBEAT_MAX_AGE", "-1"),
        ("STATUSAPI_STREAM_POLL", "fast"),
        ("STATUSAPI_STREAM_KEEPALIVE", "0"),
        ("STATUSAPI_METRICS_MAX_SOURCES", "-1"),
        ("STATUSAPI_METRICS_MAX_SOURCES", "lots"),
        ("HEALTHD_RISE", "0"),  # the API reads the daemon's defaults too
    ],
)
def test_bad_value_fails_app_creation_in_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, raw: str
) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(ConfigError) as err:
        create_app()
    message = str(err.value)
    assert message.startswith(f"{name}: ") and repr(raw) in message and "\n" not in message
    assert err.value.__suppress_context__  # no chained traceback behind the one line


@pytest.mark.parametrize("raw", ["", " ", ",", " , ,"])
def test_tokens_set_but_empty_are_refused(raw: str) -> None:
    """Not read as "no tokens, no auth": the operator meant to require one."""
    with pytest.raises(ConfigError) as err:
        config.load({"STATUSAPI_TOKENS": raw})
    message = str(err.value)
    assert message.startswith("STATUSAPI_TOKENS: is set but holds no token") and "\n" not in message
    assert config.load({}).tokens == ()  # unset: no auth, as before
    assert config.load({"STATUSAPI_TOKENS": " a, ,b "}).tokens == ("a", "b")
