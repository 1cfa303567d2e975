from __future__ import annotations

import pytest

from healthd.config import settings
from healthd.core.errors import ConfigError
from statusapi.web import config as api_config


def test_defaults() -> None:
    s = settings.load({})
    assert (s.interval, s.rise, s.fall, s.timeout, s.concurrency) == (30.0, 3, 3, 10.0, 500)
    assert s.retry_interval is None and settings.default_retry(s.interval) == 10.0
    api = api_config.load({})
    assert s.log_format == "text" and api.ai_source_id == "ai-connection" and api.tokens == ()


def test_environment_and_flags() -> None:
    env = {
        "HEALTHD_DATABASE_URL": "postgresql:///x",
        "HEALTHD_INTERVAL": "2",
        "STATUSAPI_TOKENS": "a, b,,",
        "HEALTHD_LOG_FORMAT": "json",
    }
    s = settings.load(env, rise=5, fall=None)
    api = api_config.load(env)
    assert s.database_url == "postgresql:///x" and api.database_url == "postgresql:///x"
    assert s.interval == 2.0 and settings.default_retry(s.interval) == 1.0
    assert api.tokens == ("a", "b") and s.rise == 5 and s.fall == 3 and s.log_format == "json"


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("HEALTHD_INTERVAL", "soon"),
        ("HEALTHD_RISE", "0"),
        ("HEALTHD_FALL", "1.5"),
        ("HEALTHD_TIMEOUT", "-1"),
        ("HEALTHD_LOG_FORMAT", "xml"),
        ("HEALTHD_CONCURRENCY", "x"),
    ],
)
def test_bad_values_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings.load({name: raw})
    assert str(err.value).startswith(name)


def test_missing_database_url_names_variable() -> None:
    with pytest.raises(ConfigError, match="HEALTHD_DATABASE_URL"):
        settings.load({}).require_database_url()
