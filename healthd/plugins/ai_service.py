"""An OpenAI-compatible API: GET {endpoint}/models with the API key."""

from __future__ import annotations

import json
import time
from typing import Any

from healthd.http import CurlError
from healthd.plugins import httpclient
from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms

# A model list is tens of kilobytes (a few hundred models, a megabyte at the very most);
# the body is read up to this and no further, like the http plugin's.
BODY_LIMIT = 8 << 20


class AiServicePlugin(Plugin):
    name = "ai-service"
    description = (
        "OpenAI-compatible API: lists models with the key; 401/403 means the key is rejected"
    )
    fields = {
        "endpoint": Field("str", required=True, help="base URL, e.g. https://api.example.com/v1"),
        "api_key": Field("str", required=True, secret=True),
        "model": Field("str", help="this model must be listed"),
        "verify_tls": Field("bool", default=True),
        "ca_file": Field("str"),
    }

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        url = cfg["endpoint"].rstrip("/") + "/models"
        started = time.perf_counter()
        try:
            # redirects followed as aiohttp did, the key only to the endpoint's own origin
            resp, phases, _ = await httpclient.fetch(
                url,
                timeout,
                headers={"Authorization": f"Bearer {cfg['api_key']}"},
                verify=cfg["verify_tls"],
                ca_file=cfg.get("ca_file"),
                body_limit=BODY_LIMIT,
                keep_body=True,
            )
            if resp.truncated and resp.status == 200:
                return ProbeResult.error(
                    f"HTTP 200, but the answer is larger than {BODY_LIMIT >> 20} MiB",
                    elapsed_ms(started),
                )
            judged = _judge(resp.status, resp.body, cfg.get("model"), elapsed_ms(started))
            return ProbeResult(judged.status, judged.message, judged.latency_ms, False, phases)
        except (httpclient.RedirectRefused, ValueError) as exc:
            return ProbeResult.error(str(exc), elapsed_ms(started))
        except (TimeoutError, CurlError) as exc:
            status, message = httpclient.describe_error(exc, url, timeout)
            return ProbeResult(status, message, elapsed_ms(started))  # type: ignore[arg-type]


def _judge(status: int, body: bytes, model: str | None, latency: float) -> ProbeResult:
    if status in (401, 403):
        return ProbeResult.error(f"API key rejected ({status})", latency)
    if status == 429:
        return ProbeResult.error(
            f"rate limited (429): {_api_message(body) or 'too many requests'}", latency
        )
    if status != 200:
        detail = _api_message(body)
        return ProbeResult.error(f"HTTP {status}" + (f": {detail}" if detail else ""), latency)
    try:
        data = json.loads(body)
        ids = {m.get("id") for m in data.get("data", []) if isinstance(m, dict)}
    except (ValueError, AttributeError):
        return ProbeResult.error(
            "HTTP 200, but the body is not an OpenAI-style model list", latency
        )
    if model and model not in ids:
        return ProbeResult.error(
            f"model {model!r} is not offered ({len(ids)} models listed)", latency
        )
    return ProbeResult.connected(f"{len(ids)} models", latency)


def _api_message(body: bytes) -> str:
    try:
        data: Any = json.loads(body)
        msg = data.get("error", {}).get("message", "") if isinstance(data, dict) else ""
    except (ValueError, AttributeError):
        return ""
    return str(msg)[:200]
