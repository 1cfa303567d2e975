from __future__ import annotations

import io
import json
import logging

from healthd.core.secrets import safe_url, scrub, strip_url_credentials
from healthd.daemon.logs import JsonFormatter


def test_json_log_lines_carry_the_event_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("healthd.test.json")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning(
            "source %s: %s -> %s",
            "web",
            "connected",
            "error",
            extra={
                "source_id": "web",
                "event": "transition",
                "from_status": "connected",
                "to_status": "error",
            },
        )
    finally:
        log.removeHandler(handler)
    entry = json.loads(stream.getvalue())
    assert entry["msg"] == "source web: connected -> error" and entry["level"] == "warning"
    assert (entry["source_id"], entry["to_status"]) == ("web", "error") and entry["ts"].endswith(
        "+00:00"
    )


def test_scrubbing() -> None:
    assert (
        scrub("auth failed for sk-123456 at https://u:pw@h/x?api_key=abc&q=1", ["sk-123456"])
        == "auth failed for *** at https://h/x?api_key=***&q=1"
    )
    assert (
        strip_url_credentials("postgresql://healthd:s3cret@db:5432/x") == "postgresql://db:5432/x"
    )
    assert safe_url("https://u:p@example.com:8443/path?token=x") == "https://example.com:8443/path"
