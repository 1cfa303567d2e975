"""Prometheus metrics: status gauges and the daemons' own counters read from the table
at scrape time, plus the API's request counters (summed over gunicorn's workers when
PROMETHEUS_MULTIPROC_DIR is set: statusapi/web/multiproc.py).

Every label value is bounded: methods outside the standard set are ``other``, routes are
the app's URL rules (``unmatched`` otherwise), plugins are registered plugin names
(``other`` otherwise), nodes are the daemons with a fresh heartbeat.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from healthd import __version__
from healthd.core.phases import NAMES as PHASES
from healthd.core.words import CONNECTED, PROBE_STATUSES, STATUSES
from statusapi.data import queries
from statusapi.web import multiproc

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
RESULTS = frozenset(PROBE_STATUSES)
DELIVERY_OUTCOMES = ("delivered", "failed", "given_up")
_PLUGIN_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "statusapi_requests", "HTTP requests served", ["method", "route", "code"], registry=REGISTRY
)
LATENCY = Histogram(
    "statusapi_request_duration_seconds",
    "HTTP request latency",
    ["route"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def code_label(code: int) -> str:
    return str(code) if 100 <= code <= 599 else "other"


def plugin_label(name: Any, known: frozenset[str]) -> str:
    """A registered plugin's name, else ``other``: the plugin column is free text to
    PostgreSQL, and one odd row must not add a series per distinct spelling."""
    return name if isinstance(name, str) and name in known else "other"


def observe(method: str, route: str, code: int, seconds: float) -> None:
    key = (method_label(method), route, code)
    method = key[0]
    pair = _children.get(key)
    if pair is None:  # labels() takes a lock and builds a key each time: look it up once
        pair = _children[key] = (
            REQUESTS.labels(method, route, code_label(code)),
            LATENCY.labels(route),
        )
    pair[0].inc()
    if route != "/api/v1/stream":  # a stream's duration is its subscriber's patience, not latency
        pair[1].observe(seconds)


def _known_plugins() -> frozenset[str]:
    from healthd import plugins

    return frozenset(n for n in plugins.names() if _PLUGIN_NAME.match(n))


def _buckets(h: Any) -> tuple[list[tuple[str, float]], float] | None:
    """A daemon's histogram snapshot ({le, counts, sum}) as cumulative Prometheus buckets."""
    try:
        bounds = [float(b) for b in h["le"]]
        counts = [int(c) for c in h["counts"]]
        total = float(h["sum"])
    except (KeyError, TypeError, ValueError):
        return None
    if len(counts) != len(bounds) + 1 or not math.isfinite(total):
        return None
    out, running = [], 0
    for bound, c in zip([*bounds, math.inf], counts, strict=True):
        running += c
        out.append(("+Inf" if bound == math.inf else repr(bound), float(running)))
    return out, total


def daemon_families(rows: list[dict[str, Any]], known: frozenset[str]) -> Iterator[Any]:
    """The daemons' own counters (healthd/core/selfmetrics.py snapshots), one series per node."""
    probes = CounterMetricFamily(
        "healthd_daemon_probes",
        "Probes finished, by plugin and result",
        labels=["node", "plugin", "result"],
    )
    duration = HistogramMetricFamily(
        "healthd_daemon_probe_duration_seconds",
        "How long probes took, by plugin",
        labels=["node", "plugin"],
    )
    # blackbox_exporter's probe_http_duration_seconds{phase} is per probe; this is the same
    # split over every probe of a node (healthd/core/phases.py says what each phase spans)
    phase = HistogramMetricFamily(
        "healthd_daemon_probe_phase_seconds",
        "Time of each phase of HTTP probes (resolve, connect, tls, processing, transfer)",
        labels=["node", "plugin", "phase"],
    )
    lag = HistogramMetricFamily(
        "healthd_daemon_schedule_lag_seconds",
        "How late each probe started against its due time",
        labels=["node"],
    )
    in_flight = GaugeMetricFamily(
        "healthd_daemon_probes_in_flight", "Probes running at the last heartbeat", labels=["node"]
    )
    sources = GaugeMetricFamily(
        "healthd_daemon_sources", "Sources this daemon probes", labels=["node"]
    )
    write = HistogramMetricFamily(
        "healthd_daemon_write_batch_duration_seconds",
        "How long one batch of results and transitions took to write",
        labels=["node"],
    )
    outages = CounterMetricFamily(
        "healthd_daemon_database_outages",
        "Times this daemon lost the database",
        labels=["node"],
    )
    deliveries = CounterMetricFamily(
        "healthd_daemon_webhook_deliveries",
        "Webhook delivery attempts by outcome (given_up: the last attempt failed)",
        labels=["node", "outcome"],
    )
    for row in rows:
        node, m = str(row["node_id"]), row["metrics"]
        if not isinstance(m, dict) or m.get("v") != 1:
            continue
        for entry in m.get("probes") or []:
            try:
                plugin, result, n = entry
                probes.add_metric(
                    [
                        node,
                        plugin_label(plugin, known),
                        result if result in RESULTS else "other",
                    ],
                    float(n),
                )
            except (TypeError, ValueError):
                continue
        for plugin, h in (m.get("probe_duration") or {}).items():
            b = _buckets(h)
            if b is not None:
                duration.add_metric([node, plugin_label(plugin, known)], b[0], b[1])
        for plugin, by_phase in (m.get("probe_phase") or {}).items():
            if not isinstance(by_phase, dict):
                continue
            for name in PHASES:  # only the known phases: a bounded label
                b = _buckets(by_phase.get(name))
                if b is not None:
                    phase.add_metric([node, plugin_label(plugin, known), name], b[0], b[1])
        for fam, key in ((lag, "schedule_lag"), (write, "write_batch")):
            b = _buckets(m.get(key))
            if b is not None:
                fam.add_metric([node], b[0], b[1])
        for gauge, key in ((in_flight, "in_flight"), (sources, "sources")):
            if isinstance(m.get(key), int | float):
                gauge.add_metric([node], float(m[key]))
        if isinstance(m.get("db_outages"), int | float):
            outages.add_metric([node], float(m["db_outages"]))
        given = m.get("deliveries") or {}
        for outcome in DELIVERY_OUTCOMES:
            if isinstance(given.get(outcome), int | float):
                deliveries.add_metric([node, outcome], float(given[outcome]))
    yield from (probes, duration, phase, lag, in_flight, sources, write, outages, deliveries)


def count_families(rows: list[dict[str, Any]], known: frozenset[str]) -> Iterator[Any]:
    """Sources by status, plugin and enabled, and flapping ones by plugin. Every
    combination of a status word, a registered plugin (or ``other``) and enabled is
    written, 0 when there is none, so a count that drops to zero reads 0 instead of
    vanishing (an alert on it then resolves, and a graph shows the drop)."""
    sources = GaugeMetricFamily(
        "healthd_sources",
        "Sources by debounced status, plugin and enabled",
        labels=["status", "plugin", "enabled"],
    )
    flapping = GaugeMetricFamily(
        "healthd_sources_flapping", "Sources flagged as flapping, by plugin", labels=["plugin"]
    )
    plugins = [*sorted(known), "other"]
    by_labels = {(st, pl, en): 0 for st in STATUSES for pl in plugins for en in ("true", "false")}
    flap_by_plugin = dict.fromkeys(plugins, 0)
    for r in rows:
        plugin = plugin_label(r["plugin"], known)
        key = (r["connection_status"], plugin, str(r["enabled"]).lower())
        by_labels[key] = by_labels.get(key, 0) + r["n"]
        flap_by_plugin[plugin] += r["flapping"]
    for labels, n in by_labels.items():
        sources.add_metric(list(labels), n)
    for plugin, n in flap_by_plugin.items():
        flapping.add_metric([plugin], n)
    yield from (sources, flapping)


# The per-source series, written here rather than through prometheus_client's families:
# its generic writer escapes and formats every sample on its own, ~10 µs each, which was
# 1-2 s of a worker's CPU for 10,000 sources (100,000 lines); written as below, each
# source's label value is escaped once and the page takes a tenth of that.
# (name, help) in the order written; only healthd_source_up carries plugin and type.
SOURCE_SERIES = (
    ("healthd_source_up", "1 when the source's debounced status is connected, else 0"),
    ("healthd_source_status", "1 for the source's debounced status, 0 for the other words"),
    (
        "healthd_source_last_probe_age_seconds",
        "Seconds since the source's last probe finished (absent before its first)",
    ),
    (
        "healthd_source_latency_seconds",
        "How long the source's last probe took (absent when it recorded none)",
    ),
    ("healthd_source_flapping", "1 while the source is flagged as flapping"),
    (
        "healthd_source_pending_results",
        "Consecutive results disagreeing with the debounced status (0: no change pending)",
    ),
    (
        "healthd_source_pending_needed_results",
        "Results the pending change needs before the status changes (rise or fall)",
    ),
)


def escape(value: str) -> str:
    """A label value as the text exposition format requires: backslash, double quote and
    line feed escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def source_series(rows: list[tuple[Any, ...]], cap: int, known: frozenset[str]) -> str:
    """Series of each enabled source (the first ``cap`` by id; ``rows`` may hold one more,
    which says there are more), then whether the cap cut any off. Join the per-source
    series to healthd_source_up on source_id for plugin and type."""
    lines: dict[str, list[str]] = {name: [] for name, _ in SOURCE_SERIES}
    up, status, age, latency, flapping, pending, needed = lines.values()
    for sid, plugin, kind, word, flap, count, need, age_s, latency_ms in rows[:cap]:
        sl = f'{{source_id="{escape(str(sid))}"'
        up.append(
            f'{sl},plugin="{escape(plugin_label(plugin, known))}",type="{escape(kind or "")}"}} '
            f"{int(word == CONNECTED)}"
        )
        status.extend(f'{sl},status="{w}"}} {int(w == word)}' for w in STATUSES)
        if age_s is not None:
            age.append(f"{sl}}} {_num(max(0.0, age_s))}")
        if latency_ms is not None:
            latency.append(f"{sl}}} {_num(latency_ms / 1000)}")
        flapping.append(f"{sl}}} {int(bool(flap))}")
        pending.append(f"{sl}}} {int(count)}")
        needed.append(f"{sl}}} {int(need)}")
    out = []
    for name, help_text in SOURCE_SERIES:
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} gauge\n")
        out.extend(f"{name}{line}\n" for line in lines[name])
    out.append(
        "# HELP healthd_source_series_truncated 1 when more sources are enabled than"
        " STATUSAPI_METRICS_MAX_SOURCES: only the first ones by id have healthd_source_*"
        " series (healthd_sources still counts them all)\n"
        f"# TYPE healthd_source_series_truncated gauge\nhealthd_source_series_truncated"
        f" {int(len(rows) > cap)}\n"
        "# HELP healthd_source_series_max_sources STATUSAPI_METRICS_MAX_SOURCES\n"
        f"# TYPE healthd_source_series_max_sources gauge\nhealthd_source_series_max_sources"
        f" {cap}\n"
    )
    return "".join(out)


class TableCollector(Collector):
    def __init__(self, live_within: float, max_sources: int, rise_fall: tuple[int, int]) -> None:
        self.live_within = live_within
        self.max_sources = max_sources
        self.rise, self.fall = rise_fall

    def per_source(self) -> bytes:
        # one row past the cap says there are more
        rows = queries.source_gauges(self.max_sources + 1, self.rise, self.fall)
        return source_series(rows, self.max_sources, _known_plugins()).encode()

    def collect(self) -> Iterator[Any]:
        known = _known_plugins()
        build = GaugeMetricFamily(
            "healthd_build_info", "The healthd version serving this page", labels=["version"]
        )
        build.add_metric([__version__], 1)
        yield build
        yield from count_families(queries.status_by_plugin(), known)
        fresh = queries.daemon_freshness()
        nodes = GaugeMetricFamily("healthd_daemon_nodes", "Daemons with a heartbeat row")
        nodes.add_metric([], fresh["nodes"])
        age = GaugeMetricFamily(
            "healthd_daemon_heartbeat_age_seconds", "Age of the freshest daemon heartbeat"
        )
        age.add_metric([], fresh["age_s"] if fresh["age_s"] is not None else float("nan"))
        pending = GaugeMetricFamily(
            "healthd_webhook_deliveries_pending",
            "Webhook deliveries neither delivered nor given up (the outbox, all daemons)",
        )
        pending.add_metric([], queries.deliveries_pending())
        yield from (nodes, age, pending)
        yield from daemon_families(queries.daemon_metrics(self.live_within), known)


def _requests() -> CollectorRegistry:
    if not multiproc.enabled():
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def render(
    live_within: float = 60.0, max_sources: int = 10_000, rise_fall: tuple[int, int] = (3, 3)
) -> bytes:
    """The page; daemons whose heartbeat is older than ``live_within`` s are left out
    (a killed daemon's row stays behind until an operator or a restart clears it), and
    sources past the first ``max_sources`` get no series of their own. ``rise_fall``: the
    daemon's defaults, for a pending change's needed results."""
    registry = CollectorRegistry()
    table = TableCollector(live_within, max_sources, rise_fall)
    registry.register(table)
    # table gauges first (a database error surfaces before anything is written)
    return generate_latest(registry) + table.per_source() + generate_latest(_requests())
