"""Probe plugins: one module per kind. The interface is in base.py, the registry in
registry.py, what the daemon guarantees around a check in guard.py, and what counts as
secret in a config in redaction.py."""

from __future__ import annotations

from healthd.plugins.base import Field, Plugin, ProbeResult, validate_config
from healthd.plugins.guard import run_check
from healthd.plugins.registry import create, get, names, redact

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
