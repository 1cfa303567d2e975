"""An AI provider's API: its model list, fetched with the API key. What to ask each
provider and how to read its answer is in ai_providers.py; this module sends it."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from healthd.core.errors import ConfigError
from healthd.plugins import ai_providers, httpclient
from healthd.plugins.base import Field, Plugin, ProbeResult, elapsed_ms

# A model list is tens of kilobytes (a few hundred models, a megabyte at the very most);
# the body is read up to this and no further, like the http plugin's.
BODY_LIMIT = 8 << 20


class AiServicePlugin(Plugin):
    name = "ai-service"
    description = (
        "AI provider's API (OpenAI-compatible, Anthropic, Azure OpenAI, Gemini, Ollama):"
        " lists models with the key; a refused key is 'API key rejected'"
    )
    fields = {
        "endpoint": Field("str", required=True, help="base URL, e.g. https://api.example.com/v1"),
        "provider": Field(
            "str",
            default=ai_providers.DEFAULT,
            choices=ai_providers.NAMES,
            help=", ".join(ai_providers.NAMES),
        ),
        "api_key": Field(
            "str", secret=True, aliases=("apiKey",), help="required but for provider ollama"
        ),
        "model": Field("str", help="this model (azure: deployment) must be listed"),
        "api_version": Field(
            "str",
            help=f"azure: api-version ({ai_providers.AZURE_API_VERSION}); anthropic:"
            f" anthropic-version ({ai_providers.ANTHROPIC_VERSION})",
        ),
        "verify_tls": Field("bool", default=True),
        "ca_file": Field("str"),
    }

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        provider = ai_providers.PROVIDERS[self.config["provider"]]
        if provider.needs_key and self.config.get("api_key") is None:
            raise ConfigError("config.api_key", f"is required by provider {provider.name}")

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        req = ai_providers.request(cfg)
        url = req.url
        started = time.perf_counter()
        try:
            async with httpclient.session().get(
                url,
                headers=req.headers,
                ssl=httpclient.ssl_context(cfg["verify_tls"], cfg.get("ca_file")),
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                body, more = await httpclient.read_capped(resp, BODY_LIMIT)
                if more and resp.status == 200:
                    return ProbeResult.error(
                        f"HTTP 200, but the answer is larger than {BODY_LIMIT >> 20} MiB",
                        elapsed_ms(started),
                    )
                return ai_providers.judge(
                    cfg["provider"], resp.status, body, cfg.get("model"), elapsed_ms(started)
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            status, message = httpclient.describe_error(exc, url, timeout)
            return ProbeResult(status, message, elapsed_ms(started))  # type: ignore[arg-type]
