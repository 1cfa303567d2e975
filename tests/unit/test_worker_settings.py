"""HEALTHD_WORKERS and the settings a supervisor hands its workers."""

from __future__ import annotations

import os

import pytest

from healthd.config import settings
from healthd.core.errors import ConfigError


def test_auto_is_one_per_usable_core() -> None:
    assert settings.load({"HEALTHD_WORKERS": "auto"}).workers == len(os.sched_getaffinity(0))
    assert settings.load({}).workers == 1


@pytest.mark.parametrize("raw", ["0", "-2", "1.5", "two", "auto2"])
def test_bad_worker_counts_name_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="HEALTHD_WORKERS"):
        settings.load({"HEALTHD_WORKERS": raw})


def test_workers_get_exactly_the_supervisors_settings() -> None:
    """Flags given to the supervisor reach its workers as the variables they stand for."""
    s = settings.load(
        {"HEALTHD_DATABASE_URL": "postgresql:///x", "HEALTHD_RETRY_INTERVAL": "7"},
        interval=12.5,
        rise=4,
        timeout=3.0,
        concurrency=50,
        workers=2,
        log_format="json",
    )
    env = settings.to_environ(s)
    assert not any(k.startswith("STATUSAPI_") for k in env)
    again = settings.load(env)
    for attr in ("database_url", "interval", "rise", "fall", "retry_interval", "timeout"):
        assert getattr(again, attr) == getattr(s, attr), attr
    assert (again.concurrency, again.workers, again.log_format) == (50, 2, "json")
