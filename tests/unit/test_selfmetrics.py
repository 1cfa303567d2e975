"""The daemon's own counters (healthd/core/selfmetrics.py) and the supervisor's one summary."""

from __future__ import annotations

import json
import subprocess

from healthd.core.selfmetrics import LAG_BUCKETS, SelfMetrics
from healthd.daemon.supervised import Report
from healthd.daemon.supervisor import Worker, aggregate


def test_snapshot_is_json_and_counts_by_plugin_and_result() -> None:
    m = SelfMetrics()
    m.probe("http", "connected", 0.003)
    m.probe("http", "connected", 0.2)
    m.probe("tcp", "error", 10.0)
    m.lag.observe(0.0)
    m.lag.observe(100.0)  # past the last bound: +Inf
    snap = json.loads(json.dumps(m.snapshot(in_flight=2, sources=3)))
    assert snap["probes"] == [["http", "connected", 2], ["tcp", "error", 1]]
    assert sum(snap["probe_duration"]["http"]["counts"]) == 2
    assert snap["schedule_lag"]["counts"][0] == 1 and snap["schedule_lag"]["counts"][-1] == 1
    assert len(snap["schedule_lag"]["counts"]) == len(LAG_BUCKETS) + 1
    assert snap["in_flight"] == 2 and snap["sources"] == 3


def _worker(report: Report) -> Worker:
    import socket

    w = Worker(0, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM), "")
    w.proc = subprocess.Popen(["true"])
    w.proc.wait()
    w.report, w.behind, w.reconnected = report, report.behind, report.reconnected
    return w


def test_one_summary_line_for_every_worker() -> None:
    a = _worker(Report(healthy=3, failed=1, reconnected=2, behind=0.2))
    b = _worker(Report(healthy=4, failed=0, reconnected=5, behind=2.5, buffered=7))
    line, reported = aggregate([a, b])
    assert reported
    assert line.startswith("Health check: 7 healthy, 1 failed, 7 reconnected")
    assert "behind schedule by up to 2.5 s" in line and "7 results buffered" in line
    # an interval without new reports: the counts stand, nothing is counted twice
    line, _ = aggregate([a, b])
    assert "0 reconnected" in line and "behind" not in line
    for w in (a, b):
        w.sock.close()


def test_healthy_and_unknown_counts_follow_every_change() -> None:
    """The runtime keeps its healthy count as statuses change instead of recounting."""
    import asyncio

    from healthd.config import settings
    from healthd.core.debounce import State
    from healthd.daemon.dispatch import Runtime, build_source
    from healthd.plugins import ProbeResult
    from tests.fix_db import DiscardSink, source_row

    rt = Runtime(settings.load({}), DiscardSink())

    async def scenario() -> None:
        a = build_source(source_row("a", "connected"), rt.settings)
        b = build_source(source_row("b", "unknown"), rt.settings)
        rt.add(a, 0.0)
        rt.add(b, 0.0)
        assert rt.status_counts() == (1, 0)  # not probed yet: neither healthy nor failed
        rt._record(b, ProbeResult.connected("ok", 1.0))  # unknown: adopted at once
        assert rt.status_counts() == (2, 0)
        c = build_source(source_row("c", "unknown"), rt.settings)
        rt.add(c, 0.0)
        rt._record(c, ProbeResult.error("no", 1.0))
        assert rt.status_counts() == (2, 1)
        rt.retire(c)
        assert rt.status_counts() == (2, 0) and rt.unknown == 0
        # a write that did not land: the table's state is read back, and counted
        rt.restate(a, State(status="error"))
        assert rt.status_counts() == (1, 1)
        rt.restate(a, State(status="connected"))
        for _ in range(3):
            rt._record(a, ProbeResult.error("down", 1.0))
        assert rt.status_counts() == (1, 1)
        rt.add(build_source(source_row("b", "connected"), rt.settings), 0.0)  # replaced
        assert rt.status_counts() == (1, 1)
        rt.retire(rt.sources["b"])
        rt.retire(b)  # a stale copy: nothing counted twice
        assert rt.status_counts() == (0, 1)
        assert rt.healthy == sum(s.state.status == "connected" for s in rt.sources.values())
        assert rt.unknown == sum(s.state.status == "unknown" for s in rt.sources.values())
        await asyncio.gather(*rt.tasks)

    asyncio.run(scenario())
