"""The daemon's own counters, published with its heartbeat (daemon_nodes.metrics, jsonb).

The daemon has no listener of its own: every heartbeat writes a snapshot, and the API's
`/metrics` renders the snapshots of the live daemons labelled by node (statusapi/metrics.py).
Counting costs a dict increment and a bisect per probe; nothing here takes a lock (the
event loop's thread owns it; the writer thread only reports durations through
``observe_write``, a single list-element increment under the GIL).

Label values are bounded here already: the plugin is a registered plugin's name or
``invalid`` (a row naming an unknown plugin), the result is one of the three probe
outcomes.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from healthd.core.phases import NAMES, Phases
from healthd.core.words import PROBE_STATUSES

VERSION = 1
PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# an HTTP probe's phases (healthd/core/phases.py), seconds: a loopback connect takes tens
# of microseconds, a TLS handshake a millisecond or two
PHASE_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
RESULTS = PROBE_STATUSES


class Histogram:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; last is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def snapshot(self) -> dict[str, Any]:
        return {"le": list(self.bounds), "counts": list(self.counts), "sum": self.total}


# the bounds in milliseconds, as phases come: no division per observation
_PHASE_MS = tuple(b * 1000 for b in PHASE_BUCKETS)


class PhaseHistograms:
    """One histogram per phase (NAMES order) of one plugin's probes. Written out rather
    than five Histogram.observe calls: this runs for every HTTP probe."""

    __slots__ = ("counts", "sums")

    def __init__(self) -> None:
        self.counts = [[0] * (len(PHASE_BUCKETS) + 1) for _ in NAMES]
        self.sums = [0.0] * len(NAMES)  # milliseconds

    def observe(self, ph: Phases) -> None:
        c, s, b = self.counts, self.sums, _PHASE_MS
        a, d, t, p, x = ph
        c[0][bisect_left(b, a)] += 1
        c[1][bisect_left(b, d)] += 1
        c[2][bisect_left(b, t)] += 1
        c[3][bisect_left(b, p)] += 1
        c[4][bisect_left(b, x)] += 1
        s[0] += a
        s[1] += d
        s[2] += t
        s[3] += p
        s[4] += x

    def snapshot(self) -> dict[str, Any]:
        return {
            n: {"le": list(PHASE_BUCKETS), "counts": list(c), "sum": total / 1000}
            for n, c, total in zip(NAMES, self.counts, self.sums, strict=True)
        }


class SelfMetrics:
    def __init__(self) -> None:
        self.probes: dict[tuple[str, str], int] = {}
        self.durations: dict[str, Histogram] = {}
        # plugin -> one histogram per phase, in NAMES order
        self.phases: dict[str, PhaseHistograms] = {}
        self.lag = Histogram(LAG_BUCKETS)
        self.write_batch = Histogram(WRITE_BUCKETS)
        self.db_outages = 0
        self.deliveries: dict[str, int] = {"delivered": 0, "failed": 0, "given_up": 0}

    def probe(self, plugin: str, result: str, seconds: float, phases: Phases | None = None) -> None:
        key = (plugin, result)
        self.probes[key] = self.probes.get(key, 0) + 1
        h = self.durations.get(plugin)
        if h is None:
            h = self.durations[plugin] = Histogram(PROBE_BUCKETS)
        h.observe(seconds)
        if phases is not None:
            hs = self.phases.get(plugin)
            if hs is None:
                hs = self.phases[plugin] = PhaseHistograms()
            hs.observe(phases)

    def delivery(self, outcome: str) -> None:
        self.deliveries[outcome] = self.deliveries.get(outcome, 0) + 1

    def snapshot(self, in_flight: int, sources: int) -> dict[str, Any]:
        return {
            "v": VERSION,
            "probes": [[p, r, n] for (p, r), n in sorted(self.probes.items())],
            "probe_duration": {p: h.snapshot() for p, h in sorted(self.durations.items())},
            "probe_phase": {p: hs.snapshot() for p, hs in sorted(self.phases.items())},
            "schedule_lag": self.lag.snapshot(),
            "write_batch": self.write_batch.snapshot(),
            "in_flight": in_flight,
            "sources": sources,
            "db_outages": self.db_outages,
            "deliveries": dict(self.deliveries),
        }
