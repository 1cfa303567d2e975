"""The test helpers by their historical names. They live in the fixture modules now
(tests/fix_servers.py, tests/fix_procs.py); this module re-exports them so that
`from tests.support import ...` keeps working."""

from __future__ import annotations

from tests.fix_procs import DaemonProcess, Gunicorn, invoke, wait_for
from tests.fix_servers import DnsServer, FakeOpenAI, Target, hanging_listener, make_cert

__all__ = [
    "DaemonProcess",
    "DnsServer",
    "FakeOpenAI",
    "Gunicorn",
    "Target",
    "hanging_listener",
    "invoke",
    "make_cert",
    "wait_for",
]
