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

from healthd.core.phases import NAMES as PHASES
from statusapi.data import queries
from statusapi.web import multiproc

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
RESULTS = frozenset({"connected", "disconnected", "error"})
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


class TableCollector(Collector):
    def __init__(self, live_within: float) -> None:
        self.live_within = live_within

    def collect(self) -> Iterator[Any]:
        known = _known_plugins()
        rows = queries.status_by_plugin()
        sources = GaugeMetricFamily(
            "healthd_sources",
            "Sources by debounced status, plugin and enabled",
            labels=["status", "plugin", "enabled"],
        )
        flapping = GaugeMetricFamily(
            "healthd_sources_flapping", "Sources flagged as flapping, by plugin", labels=["plugin"]
        )
        by_labels: dict[tuple[str, str, str], int] = {}
        flap_by_plugin: dict[str, int] = {}
        for r in rows:
            plugin = plugin_label(r["plugin"], known)
            key = (r["connection_status"], plugin, str(r["enabled"]).lower())
            by_labels[key] = by_labels.get(key, 0) + r["n"]
            flap_by_plugin[plugin] = flap_by_plugin.get(plugin, 0) + r["flapping"]
        for labels, n in by_labels.items():
            sources.add_metric(list(labels), n)
        for plugin, n in flap_by_plugin.items():
            flapping.add_metric([plugin], n)
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
        yield from (sources, flapping, nodes, age, pending)
        yield from daemon_families(queries.daemon_metrics(self.live_within), known)


def _requests() -> CollectorRegistry:
    if not multiproc.enabled():
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def render(live_within: float = 60.0) -> bytes:
    """The page; daemons whose heartbeat is older than ``live_within`` s are left out
    (a killed daemon's row stays behind until an operator or a restart clears it)."""
    registry = CollectorRegistry()
    registry.register(TableCollector(live_within))
    # table gauges first (a database error surfaces before anything is written)
    return generate_latest(registry) + generate_latest(_requests())
