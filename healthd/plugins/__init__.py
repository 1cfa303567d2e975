"""Probe plugins: one module per kind; the interface and registry live in base.py."""

from __future__ import annotations

from healthd.plugins.base import (
    Field,
    Plugin,
    ProbeResult,
    create,
    get,
    names,
    redact,
    run_check,
    validate_config,
)

__all__ = [
    "Field",
    "Plugin",
    "ProbeResult",
    "create",
    "get",
    "names",
    "redact",
    "run_check",
    "validate_config",
]
