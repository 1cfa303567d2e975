"""An AI provider's API: its model list, fetched with the API key. What to ask each
provider and how to read its answer is in ai_providers.py; this module sends it."""

from __future__ import annotations

import time
from typing import Any

from healthd.core.errors import ConfigError
from healthd.http import CurlError
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
            also = ", ".join(self.fields["api_key"].aliases)
            raise ConfigError(
                "config.api_key",
                f"is required by provider {provider.name} (also accepted as {also})",
            )

    async def check(self, timeout: float) -> ProbeResult:
        cfg = self.resolved()
        req = ai_providers.request(cfg)
        url = req.url
        started = time.perf_counter()
        try:
            # redirects followed, the key only to the endpoint's own origin
            resp, phases, _ = await httpclient.fetch(
                url,
                timeout,
                headers=req.headers,
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
            judged = ai_providers.judge(
                cfg["provider"], resp.status, resp.body, cfg.get("model"), elapsed_ms(started)
            )
            return ProbeResult(judged.status, judged.message, judged.latency_ms, False, phases)
        except (httpclient.RedirectRefused, ValueError) as exc:
            return ProbeResult.error(str(exc), elapsed_ms(started))
        except (TimeoutError, CurlError) as exc:
            status, message = httpclient.describe_error(exc, url, timeout)
            return ProbeResult(status, message, elapsed_ms(started))  # type: ignore[arg-type]
