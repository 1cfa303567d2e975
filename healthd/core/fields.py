"""The columns of ``data_sources``, declared once.

Every column list the code uses is derived from ``FIELDS``: what the CLI writes and shows
(healthd/store/catalog.py), what the daemon loads (healthd/store), what the API selects and shows
(statusapi/data/queries.py, statusapi/data/shapes.py), the OpenAPI ``Source`` schema
(statusapi/openapi/parts.py) and what the status page selects and shows
(statusapi/data/queries.py PAGE_SOURCE_SELECT, statusapi/page/views.py). Adding a column the
API and the page show is its migration plus one ``Column(...)`` line here (with ``label``).

The declaration order is the order the CLI shows a source in (operator block first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from healthd.core.words import FAILED, STATUSES, SUCCESS

Writer = Literal["operator", "daemon", "database"]

TS: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
NSTR: dict[str, Any] = {"type": ["string", "null"]}
NNUM: dict[str, Any] = {"type": ["number", "null"]}
STR: dict[str, Any] = {"type": "string"}
STATUS_SCHEMA: dict[str, Any] = {"type": "string", "enum": list(STATUSES)}


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    writer: Writer
    # the OpenAPI schema of the column as the API shows it; None: the API does not show it
    api: dict[str, Any] | None = None
    api_required: bool = True  # listed under the Source schema's "required"
    secret: bool = False  # may hold secrets: shown only through plugins.redact
    setting: bool = False  # a per-source override of a daemon default (NULL = the default)
    cli: bool = True  # shown by `healthd status` / `sources list|show`
    daemon: bool = False  # loaded by the daemon to probe and debounce the source
    # not a column: the API's query computes it (statusapi/data/queries.py, COMPUTED)
    computed: bool = False
    # selected by the status page's query (its rows and the detail page use it)
    page: bool = False
    # shown as it is on the detail page's "Details", under this label (implies page)
    label: str | None = None

    @property
    def on_page(self) -> bool:
        return self.page or self.label is not None


FIELDS: tuple[Column, ...] = (
    # -- written by operators (the CLI, an import, plain SQL) -----------------------------
    Column("id", "varchar(50)", "operator", {"type": "string"}, daemon=True, page=True),
    Column("name", "varchar(100)", "operator", {"type": "string"}, daemon=True, page=True),
    Column("type", "varchar(50)", "operator", {"type": "string"}, page=True),
    Column("plugin", "varchar(100)", "operator", {"type": "string"}, daemon=True, page=True),
    Column(
        "config",
        "jsonb",
        "operator",
        {
            "type": "object",
            "description": 'secrets redacted to "" (references shown as references)',
        },
        secret=True,
        daemon=True,
        page=True,
    ),
    Column("enabled", "boolean", "operator", {"type": "boolean"}, daemon=True, page=True),
    Column("interval_s", "real", "operator", NNUM, False, setting=True, daemon=True),
    Column("timeout_s", "real", "operator", NNUM, False, setting=True, daemon=True),
    Column("rise", "integer", "operator", setting=True, daemon=True),
    Column("fall", "integer", "operator", setting=True, daemon=True),
    Column("retry_interval_s", "real", "operator", setting=True, daemon=True),
    # parents: a failure while one (enabled) is not connected is recorded but pages nobody
    # (healthd/store/status.py marks it suppressed)
    Column(
        "depends_on",
        "varchar(50)[]",
        "operator",
        {"type": "array", "items": STR},
        label="Depends on",
    ),
    # -- written by the daemon -------------------------------------------------------------
    Column("connection_status", "varchar(20)", "daemon", STATUS_SCHEMA, daemon=True, page=True),
    Column(
        "test_status",
        "varchar(20)",
        "daemon",
        {"type": ["string", "null"], "enum": [SUCCESS, FAILED, None]},
        page=True,
    ),
    # loaded by the daemon too: a source taken on is next due at its last probe + interval
    Column("last_tested_at", "timestamptz", "daemon", TS, daemon=True, page=True),
    Column("test_error_message", "text", "daemon", NSTR, page=True),
    Column("status_changed_at", "timestamptz", "daemon", TS, page=True),
    Column("latency_ms", "real", "daemon", NNUM, page=True),
    Column("flapping", "boolean", "daemon", {"type": "boolean"}, daemon=True, page=True),
    # shown by the API folded into its computed "pending" object (statusapi/data/shapes.py)
    Column("pending_status", "varchar(20)", "daemon", daemon=True, page=True),
    Column("pending_count", "integer", "daemon", daemon=True, page=True),
    Column("reconnect_count", "bigint", "daemon", label="Reconnections"),
    Column("created_at", "timestamptz", "database", label="Created"),
    # as in the original: moved by every write of the row (the daemon's status writes too)
    Column("updated_at", "timestamptz", "database", TS, False),
    # moved only when what is probed changes (a row trigger); the daemon's resync compares it
    Column("config_changed_at", "timestamptz", "database", daemon=True),
    # -- computed by the API's query (statusapi/data/queries.py COMPUTED) ------------------
    Column(
        "unreachable_via",
        "varchar(50)[]",
        "database",
        {
            "type": "array",
            "items": STR,
            "description": "the parents (depends_on) that are enabled and not connected now",
        },
        cli=False,
        computed=True,
        page=True,
    ),
    Column(
        "in_maintenance",
        "boolean",
        "database",
        {"type": "boolean", "description": "inside a maintenance window now"},
        cli=False,
        computed=True,
        page=True,
    ),
    # -- the daemon's own debounce state, shown nowhere --------------------------------
    Column("pending_results", "jsonb", "daemon", cli=False, daemon=True),
    Column("recent_results", "varchar(21)", "daemon", cli=False, daemon=True),
    Column("percent_state_change", "real", "daemon", cli=False, daemon=True),
)

BY_NAME: dict[str, Column] = {f.name: f for f in FIELDS}

# what an operator writes, in the order the CLI inserts and exports it
OPERATOR: tuple[str, ...] = tuple(f.name for f in FIELDS if f.writer == "operator")
SETTINGS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.setting)
# what the CLI shows beyond what the operator wrote
STATUS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.cli and f.writer != "operator")
# what the daemon loads of each source it probes
DAEMON: tuple[str, ...] = tuple(f.name for f in FIELDS if f.daemon)
# what the API shows of a source as it is (secret-bearing ones go through plugins.redact)
API: tuple[str, ...] = tuple(f.name for f in FIELDS if f.api is not None)
API_PLAIN: tuple[str, ...] = tuple(n for n in API if not BY_NAME[n].secret)
API_SECRET: tuple[str, ...] = tuple(n for n in API if BY_NAME[n].secret)
# what the status page selects, and what its detail page lists under "Details"
PAGE: tuple[str, ...] = tuple(f.name for f in FIELDS if f.on_page)
PAGE_LABELS: tuple[tuple[str, str], ...] = tuple((f.name, f.label) for f in FIELDS if f.label)


def api_properties() -> dict[str, Any]:
    """The OpenAPI properties of the columns the API shows as they are."""
    return {f.name: dict(f.api) for f in FIELDS if f.api is not None}


def api_required() -> list[str]:
    return [f.name for f in FIELDS if f.api is not None and f.api_required]
