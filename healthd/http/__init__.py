"""The HTTP engine: every request the daemon's probes make goes through libcurl's multi
interface, driven by the daemon's own asyncio loop (engine.py), and comes back as a
:class:`~healthd.http.engine.Response` with its status, capped body, phase times and the
peer's certificate chain. May import healthd.core only; the http and ai-service plugins
use it, and the webhook sender (healthd/notify/) can."""

from __future__ import annotations

from healthd.http.engine import CurlError, Response, close_engine, loop_engine, request

__all__ = ["CurlError", "Response", "close_engine", "loop_engine", "request"]
