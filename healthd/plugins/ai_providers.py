"""The AI providers the ai-service plugin speaks: for each, the request that lists its
models with the key, and the reading of the answer.

Pure: no I/O. ai_service.py sends the request and hands back the status and body; this
module says what they mean. A refused key is ``error`` "API key rejected" whatever the
provider's way of saying so; ``model``, when given, must be among the models listed.

- ``openai``: GET {endpoint}/models with ``Authorization: Bearer``; models ``data[].id``.
- ``anthropic``: GET {endpoint}/models?limit=1000 with ``x-api-key`` and
  ``anthropic-version``; models ``data[].id``.
- ``azure``: GET {endpoint}/openai/deployments?api-version=... with ``api-key``; a
  deployment answers to its name (``data[].id``) and its model's (``data[].model``).
- ``gemini``: GET {endpoint}/models?pageSize=1000 with ``x-goog-api-key``; models
  ``models[].name``, the ``models/`` prefix optional.
- ``ollama``: GET {endpoint}/api/tags, no key (a Bearer key when given, for a proxy in
  front); models ``models[].name``, the ``:latest`` tag optional.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from healthd.plugins.base import ProbeResult

DEFAULT = "openai"
ANTHROPIC_VERSION = "2023-06-01"
# the newest data-plane api-version that still lists a resource's deployments
AZURE_API_VERSION = "2022-12-01"


@dataclass(frozen=True)
class Request:
    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Listed:
    """The models an answer lists: ``count`` entries, known by every name in ``names``
    (an entry may answer to more than one), and whether the list has further pages."""

    count: int
    names: frozenset[str]
    more: bool = False


@dataclass(frozen=True)
class Provider:
    name: str
    needs_key: bool
    request: Callable[[Mapping[str, Any]], Request]
    # the parsed JSON body of a 200 -> the models; ValueError/TypeError/KeyError: wrong shape
    read: Callable[[Any], Listed]
    shape: str  # what a 200's body should be, for the message when it is not
    # the parsed body of a refusal other than 401/403 that still means "bad key"
    rejects: Callable[[int, Any], bool] = lambda status, body: False


def _base(cfg: Mapping[str, Any]) -> str:
    return str(cfg["endpoint"]).rstrip("/")


def _openai_request(cfg: Mapping[str, Any]) -> Request:
    return Request(_base(cfg) + "/models", {"Authorization": f"Bearer {cfg['api_key']}"})


def _anthropic_request(cfg: Mapping[str, Any]) -> Request:
    version = cfg.get("api_version") or ANTHROPIC_VERSION
    headers = {"x-api-key": str(cfg["api_key"]), "anthropic-version": str(version)}
    return Request(_base(cfg) + "/models?limit=1000", headers)


def _azure_request(cfg: Mapping[str, Any]) -> Request:
    version = cfg.get("api_version") or AZURE_API_VERSION
    url = f"{_base(cfg)}/openai/deployments?api-version={version}"
    return Request(url, {"api-key": str(cfg["api_key"])})


def _gemini_request(cfg: Mapping[str, Any]) -> Request:
    # the key in a header, not in ?key=: a URL ends up in proxies' logs and in messages
    return Request(_base(cfg) + "/models?pageSize=1000", {"x-goog-api-key": str(cfg["api_key"])})


def _ollama_request(cfg: Mapping[str, Any]) -> Request:
    key = cfg.get("api_key")
    return Request(_base(cfg) + "/api/tags", {"Authorization": f"Bearer {key}"} if key else {})


def _entries(body: Any, key: str) -> list[dict[str, Any]]:
    items = body[key]
    if not isinstance(items, list):
        raise TypeError(key)
    return [m for m in items if isinstance(m, dict)]


def _names(entries: Iterable[dict[str, Any]], *keys: str) -> frozenset[str]:
    return frozenset(str(m[k]) for m in entries for k in keys if isinstance(m.get(k), str))


def _read_data(body: Any) -> Listed:
    entries = _entries(body, "data")
    return Listed(len(entries), _names(entries, "id"), bool(body.get("has_more")))


def _read_azure(body: Any) -> Listed:
    # a deployment answers to its own name (what a request names) and to its model's
    entries = _entries(body, "data")
    return Listed(len(entries), _names(entries, "id", "model"))


def _read_gemini(body: Any) -> Listed:
    entries = _entries(body, "models")
    names = _names(entries, "name")
    names |= {n.removeprefix("models/") for n in names}
    return Listed(len(entries), names, bool(body.get("nextPageToken")))


def _read_ollama(body: Any) -> Listed:
    entries = _entries(body, "models")
    names = _names(entries, "name", "model")
    names |= {n.removesuffix(":latest") for n in names}
    return Listed(len(entries), names)


def _gemini_rejects(status: int, body: Any) -> bool:
    """Google answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID."""
    if status != 400 or not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    error = body["error"]
    details = error.get("details") if isinstance(error.get("details"), list) else []
    reasons = {d.get("reason") for d in details if isinstance(d, dict)}
    return "API_KEY_INVALID" in reasons or "API key not valid" in str(error.get("message", ""))


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("openai", True, _openai_request, _read_data, "an OpenAI-style model list"),
        Provider("anthropic", True, _anthropic_request, _read_data, "an Anthropic model list"),
        Provider("azure", True, _azure_request, _read_azure, "an Azure OpenAI deployment list"),
        Provider(
            "gemini", True, _gemini_request, _read_gemini, "a Gemini model list", _gemini_rejects
        ),
        Provider("ollama", False, _ollama_request, _read_ollama, "an Ollama model list"),
    )
}
NAMES = tuple(PROVIDERS)


def request(cfg: Mapping[str, Any]) -> Request:
    """The request that lists the models of ``cfg``'s provider (its key resolved)."""
    return PROVIDERS[cfg.get("provider") or DEFAULT].request(cfg)


def judge(
    provider: str, status: int, body: bytes, model: str | None, latency: float
) -> ProbeResult:
    """What the provider's answer means: connected with the number of models, or an
    error naming what is wrong (the key, the rate, the status, the shape, the model)."""
    spec = PROVIDERS[provider or DEFAULT]
    parsed = _json(body)
    if status in (401, 403) or spec.rejects(status, parsed):
        return ProbeResult.error(f"API key rejected ({status})", latency)
    if status == 429:
        detail = api_message(parsed) or "too many requests"
        return ProbeResult.error(f"rate limited (429): {detail}", latency)
    if status != 200:
        detail = api_message(parsed)
        return ProbeResult.error(f"HTTP {status}" + (f": {detail}" if detail else ""), latency)
    try:
        listed = spec.read(parsed)
    except (KeyError, TypeError, AttributeError, ValueError):
        return ProbeResult.error(f"HTTP 200, but the body is not {spec.shape}", latency)
    if model and model not in listed.names:
        if listed.more:  # one page is read, the largest the provider serves
            seen = f"not among the first {listed.count} models listed"
        else:
            seen = f"not offered ({listed.count} models listed)"
        return ProbeResult.error(f"model {model!r} is {seen}", latency)
    return ProbeResult.connected(f"{listed.count} models", latency)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def api_message(parsed: Any) -> str:
    """The provider's own words about a refusal: ``error.message`` (OpenAI, Anthropic,
    Azure, Google) or ``error`` as a string (Ollama), cut to 200 characters."""
    if not isinstance(parsed, dict):
        return ""
    error = parsed.get("error")
    if isinstance(error, dict):
        error = error.get("message", "")
    return str(error or "")[:200]
