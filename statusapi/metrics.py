"""Prometheus metrics: status gauges read from the table at scrape time, plus this
worker's request counters (per process; each gunicorn worker counts its own requests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from statusapi import queries

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


def observe(method: str, route: str, code: int, seconds: float) -> None:
    key = (method, route, code)
    pair = _children.get(key)
    if pair is None:  # labels() takes a lock and builds a key each time: look it up once
        pair = _children[key] = (REQUESTS.labels(method, route, str(code)), LATENCY.labels(route))
    pair[0].inc()
    if route != "/api/v1/stream":  # a stream's duration is its subscriber's patience, not latency
        pair[1].observe(seconds)


class TableCollector(Collector):
    def collect(self) -> Iterator[Any]:
        rows = queries.status_by_plugin()
        sources = GaugeMetricFamily(
            "healthd_sources",
            "Sources by debounced status, plugin and enabled",
            labels=["status", "plugin", "enabled"],
        )
        flapping = GaugeMetricFamily(
            "healthd_sources_flapping", "Sources flagged as flapping, by plugin", labels=["plugin"]
        )
        flap_by_plugin: dict[str, int] = {}
        for r in rows:
            sources.add_metric(
                [r["connection_status"], r["plugin"], str(r["enabled"]).lower()], r["n"]
            )
            flap_by_plugin[r["plugin"]] = flap_by_plugin.get(r["plugin"], 0) + r["flapping"]
        for plugin, n in flap_by_plugin.items():
            flapping.add_metric([plugin], n)
        fresh = queries.daemon_freshness()
        nodes = GaugeMetricFamily("healthd_daemon_nodes", "Daemons with a heartbeat row")
        nodes.add_metric([], fresh["nodes"])
        age = GaugeMetricFamily(
            "healthd_daemon_heartbeat_age_seconds", "Age of the freshest daemon heartbeat"
        )
        age.add_metric([], fresh["age_s"] if fresh["age_s"] is not None else float("nan"))
        yield from (sources, flapping, nodes, age)


def render() -> bytes:
    registry = CollectorRegistry()
    registry.register(TableCollector())
    # table gauges first (a database error surfaces before anything is written)
    return generate_latest(registry) + generate_latest(REGISTRY)
