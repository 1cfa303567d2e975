"""The phases of an HTTP probe (healthd/core/phases.py) from libcurl's cumulative timers,
what the guard lets through, and the daemon's phase histograms."""

from __future__ import annotations

import json
import math

from healthd.core.phases import NAMES, Phases, checked, from_curl
from healthd.core.selfmetrics import PHASE_BUCKETS, SelfMetrics


def test_cumulative_timers_become_blackbox_exporters_phases() -> None:
    # dns 1 ms, TCP at 3 ms, TLS done at 10 ms, first byte at 25 ms, last at 26 ms
    p = from_curl(1000, 3000, 10_000, 25_000, 26_000)
    assert p == Phases(1.0, 2.0, 7.0, 15.0, 1.0)
    assert p.total_ms == 26.0
    assert p.as_dict() == {
        "resolve_ms": 1.0,
        "connect_ms": 2.0,
        "tls_ms": 7.0,
        "processing_ms": 15.0,
        "transfer_ms": 1.0,
    }


def test_a_phase_that_did_not_happen_is_zero_never_negative() -> None:
    # plain HTTP: libcurl leaves APPCONNECT at 0; processing starts at the TCP connect
    assert from_curl(50, 200, 0, 900, 1000) == Phases(0.05, 0.15, 0.0, 0.7, 0.1)
    # no answer at all (STARTTRANSFER 0): no processing, the rest of the time is transfer
    p = from_curl(50, 200, 0, 0, 1000)
    assert p.processing == 0.0 and all(v >= 0 for v in p)


def test_redirect_hops_add_up() -> None:
    a, b = Phases(1, 2, 3, 4, 5), Phases(0.5, 0.5, 0, 1, 1)
    assert a.plus(b) == Phases(1.5, 2.5, 3, 5, 6)


def test_only_five_finite_non_negative_numbers_pass_the_guard() -> None:
    assert checked(None) is None
    assert checked((1, 2, 3, 4, 5)) == Phases(1.0, 2.0, 3.0, 4.0, 5.0)
    assert checked((1, 2, 3)) is None
    assert checked((1, 2, 3, 4, -1)) is None
    assert checked((1, 2, 3, 4, math.nan)) is None
    assert checked(object()) is None


def test_the_daemon_keeps_a_histogram_per_plugin_and_phase() -> None:
    m = SelfMetrics()
    m.probe("http", "connected", 0.01, Phases(0.05, 0.2, 0.0, 3.0, 0.1))
    m.probe("http", "connected", 0.02, Phases(0.05, 0.2, 0.0, 30.0, 0.1))
    m.probe("tcp", "connected", 0.01)  # no phases: nothing added
    snap = json.loads(json.dumps(m.snapshot(in_flight=0, sources=2)))
    assert list(snap["probe_phase"]) == ["http"]
    by = snap["probe_phase"]["http"]
    assert list(by) == list(NAMES)
    assert by["processing"]["le"] == list(PHASE_BUCKETS)
    assert sum(by["processing"]["counts"]) == 2
    assert abs(by["processing"]["sum"] - 0.033) < 1e-9
