"""A config key as another system spells it (Field.aliases): the original backend's
``apiKey`` for the ai-service plugin's ``api_key`` -- accepted, as secret as the field,
refused when both are given, named as written in every refusal."""

from __future__ import annotations

import asyncio

import pytest

from healthd import plugins
from healthd.core.errors import ConfigError
from healthd.plugins.base import Field, Plugin, ProbeResult, secret_keys
from healthd.plugins.redaction import redact_config

KEY = "sk-original-backend-key-123"


def test_the_original_ai_config_is_accepted_as_written() -> None:
    p = plugins.create("ai-service", {"endpoint": "https://api.example.com/v1", "apiKey": KEY})
    # the plugin reads its own field name; the stored config keeps the original's key
    assert p.config["api_key"] == KEY and "apiKey" not in p.config
    assert KEY in p.probe_secrets()


def test_the_alias_is_redacted_like_the_field() -> None:
    raw = {"endpoint": "https://api.example.com/v1", "apiKey": KEY, "model": "gpt-test"}
    assert plugins.redact("ai-service", raw) == {**raw, "apiKey": ""}
    assert {"api_key", "apiKey"} <= plugins.get("ai-service")(raw).secret_fields


def test_the_alias_of_a_secret_is_scrubbed_even_where_its_name_looks_harmless() -> None:
    # an alias whose name does not look secret (healthd/plugins/redaction.py) is hidden
    # because its field is secret
    class Legacy(Plugin):
        name = "legacy"
        fields = {"api_key": Field("str", required=True, secret=True, aliases=("pass",))}

        async def check(self, timeout: float) -> ProbeResult:
            return ProbeResult.error(f"server said: {self.resolved()['api_key']} is wrong")

    assert secret_keys(Legacy) == {"api_key", "pass"}
    assert redact_config(secret_keys(Legacy), {"pass": "hunter2-xyz"}) == {"pass": ""}
    r = asyncio.run(plugins.run_check(Legacy({"pass": "hunter2-xyz"}), 1))
    assert "hunter2-xyz" not in r.message and "***" in r.message


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        (
            {"endpoint": "https://x/v1", "apiKey": KEY, "api_key": KEY},
            "config.api_key",
            "another name",
        ),
        ({"endpoint": "https://x/v1", "apiKey": 42}, "config.apiKey", "must be a string"),
        ({"endpoint": "https://x/v1"}, "config.api_key", "also accepted as apiKey"),
        ({"endpoint": "https://x/v1", "apikey": KEY}, "config.apikey", "unknown field"),
    ],
)
def test_refusals_name_the_key_as_written(
    config: dict[str, object], field: str, words: str
) -> None:
    # as `sources add` and `import` check it: the fields, then the plugin's own rules (a key
    # is required by every provider but ollama)
    with pytest.raises(ConfigError) as info:
        plugins.create("ai-service", config)
    assert info.value.field == field and words in info.value.problem
    assert KEY not in str(info.value)
