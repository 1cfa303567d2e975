"""What leaves a plugin is fit to store: the guard (run_check) cleans every result."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from hypothesis import given
from hypothesis import strategies as st

from healthd.plugins.base import Field, Plugin, ProbeResult
from healthd.plugins.guard import MAX_MESSAGE, clean_text, run_check


class Canned(Plugin):
    name: ClassVar[str] = "canned"
    fields: ClassVar[dict[str, Any]] = {}

    def __init__(self, result: Any) -> None:
        super().__init__({})
        self.result = result

    async def check(self, timeout: float) -> ProbeResult:
        return self.result  # type: ignore[no-any-return]


def probe(result: Any) -> ProbeResult:
    return asyncio.run(run_check(Canned(result), 1.0))


def storable(text: str) -> bool:
    text.encode("utf-8")  # raises on a lone surrogate
    return "\x00" not in text


def test_nul_and_lone_surrogates_are_replaced() -> None:
    got = probe(ProbeResult.error("bad\x00byte \ud800 and \udfff"))
    assert got.message == "bad\ufffdbyte \ufffd and \ufffd"
    assert got.status == "error" and storable(got.message)


def test_a_long_message_is_capped() -> None:
    got = probe(ProbeResult.error("x" * 1_000_000))
    assert len(got.message) == MAX_MESSAGE and got.message.endswith("\u2026")


def test_an_unknown_status_or_a_bad_latency_fails_only_this_source() -> None:
    got = probe(ProbeResult("weird", "hm", float("nan")))  # type: ignore[arg-type]
    assert got.status == "error" and "unknown status" in got.message
    assert got.latency_ms is not None and got.latency_ms >= 0
    got = probe(ProbeResult.connected("ok", float("inf")))
    assert got.ok and got.latency_ms is not None and got.latency_ms < 1e6
    got = probe("not a result")
    assert got.status == "error" and "not a ProbeResult" in got.message


@given(st.text())
def test_any_text_becomes_storable(text: str) -> None:
    out = clean_text(text)
    assert storable(out) and len(out) <= MAX_MESSAGE
    json.dumps(out).encode("utf-8")
    if storable(text) and len(text) <= MAX_MESSAGE:
        assert out == text


class WithSecret(Plugin):
    name: ClassVar[str] = "with-secret"
    fields: ClassVar[dict[str, Any]] = {"token": Field("str", secret=True)}

    async def check(self, timeout: float) -> ProbeResult:
        return ProbeResult.error("x" * (MAX_MESSAGE - 5) + "s3cr3t-value" + "y" * 100_000)


def test_a_secret_across_the_cut_is_scrubbed_not_halved() -> None:
    got = asyncio.run(run_check(WithSecret({"token": "s3cr3t-value"}), 1.0))
    assert "s3cr" not in got.message and len(got.message) == MAX_MESSAGE
