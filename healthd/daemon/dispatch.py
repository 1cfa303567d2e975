"""Which source is probed when: the due-time heap and the dispatch step.

APScheduler drives the loop: one short job (``dispatch``) fires every few tens of
milliseconds and starts every probe that is due. Per-source timing lives in a heap here
rather than in one APScheduler job per source, because each source's next due time
changes with every result (the retry cadence while a change is pending) and
APScheduler's per-job bookkeeping (~90 µs per run, measured) would cost a third of
a core at 3,000 probes/s before any probing happens.

Guarantees: never two probes of one source in flight; at most ``concurrency`` probes in
flight; each probe has a hard timeout (plugins.run_check); a crashing plugin only fails
its own source.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from healthd import plugins
from healthd.config.settings import Settings, default_retry
from healthd.config.sources import check_row
from healthd.core import debounce, placement
from healthd.core.debounce import Observation, State, Thresholds
from healthd.core.errors import HealthdError
from healthd.core.selfmetrics import SelfMetrics
from healthd.core.words import CONNECTED, UNKNOWN
from healthd.daemon.lines import Summary, event_line
from healthd.store.codec import ResultRow, state_from_row

log = logging.getLogger(__name__)

LAG_SAMPLES = 50_000
CHUNK = 2_000  # sources built, placed or closed between two turns of the event loop


@dataclass
class Source:
    id: str
    plugin_name: str
    config: dict[str, Any]
    thresholds: Thresholds
    timeout: float
    version: datetime | None
    state: State
    plugin: plugins.Plugin | None = None
    broken: str | None = None  # why the row cannot be probed (unknown plugin, bad config)
    token: int = 0  # invalidates stale heap entries
    in_flight: bool = False
    removed: bool = False


def thresholds_for(row: dict[str, Any], s: Settings) -> Thresholds:
    interval = row.get("interval_s") or s.interval
    retry = row.get("retry_interval_s") or (
        s.retry_interval if s.retry_interval is not None else default_retry(interval)
    )
    return Thresholds(
        rise=row.get("rise") or s.rise,
        fall=row.get("fall") or s.fall,
        interval=float(interval),
        retry_interval=float(retry),
    )


def build_source(row: dict[str, Any], s: Settings, state: State | None = None) -> Source:
    try:
        # a row edited with plain SQL can hold NaN (the CHECK > 0 lets it through): it
        # would break the heap's order and starve every other source
        check_row(row)
        bad = None
    except HealthdError as exc:
        bad = f"invalid source: {exc}"
        row = {**row, "interval_s": None, "timeout_s": None, "rise": None, "fall": None}
        row["retry_interval_s"] = None
    src = Source(
        id=row["id"],
        plugin_name=row["plugin"],
        config=row["config"],
        thresholds=thresholds_for(row, s),
        timeout=float(row.get("timeout_s") or s.timeout),
        version=row.get("config_changed_at"),
        state=state or state_from_row(row),
    )
    if bad:
        src.broken = bad
        return src
    try:
        src.plugin = plugins.create(src.plugin_name, src.config)
    except HealthdError as exc:
        src.broken = f"invalid source: {exc}"
    except Exception as exc:  # noqa: BLE001 - a third-party plugin's constructor
        src.broken = (
            f"invalid source: plugin {src.plugin_name} failed to start: {type(exc).__name__}"
        )
    return src


class ResultSink(Protocol):
    """Where results and events go (``healthd.store.Store``): buffered, written in batches."""

    def add_result(self, row: ResultRow) -> None: ...

    def add_event(self, source_id: str, event: debounce.Event, gen: int | None = None) -> None: ...


def unfenced(source_id: str) -> int | None:
    """The generation of a result probed without leases (tools, tests): not fenced."""
    return None


@dataclass
class Counters:
    probes: int = 0
    reconnects: int = 0
    lags: list[float] = field(default_factory=list)
    max_lag: float = 0.0  # since the last summary


class Runtime:
    """The in-memory table of sources being probed, and the dispatch loop."""

    def __init__(
        self,
        settings: Settings,
        sink: ResultSink,
        generation: Callable[[str], int | None] = unfenced,
    ) -> None:
        """``generation`` gives the lease generation a source is probed under (the
        daemon's lease book): each result and event is stamped with it here, so the store
        lands it only while that lease is still held."""
        self.settings = settings
        self.sources: dict[str, Source] = {}
        self.heap: list[tuple[float, int, str]] = []
        self._tokens = itertools.count(1)
        self.busy: set[str] = set()  # ids with a probe in flight; its size is the cap's count
        self.tasks: set[asyncio.Task[None]] = set()
        self.sink = sink
        self.generation = generation
        self.counters = Counters()
        self.metrics = SelfMetrics()
        # sources whose debounced status is connected, and those not probed yet, kept as
        # they change (counting them for every summary walked 100,000 sources)
        self.healthy = 0
        self.unknown = 0
        self.came_back: set[str] = set()  # since the last summary
        self.accepting = True

    # -- membership ----------------------------------------------------------------
    def schedule(self, src: Source, due: float) -> None:
        if not math.isfinite(due):
            # a due time that is not a number would break the heap's order and starve
            # every other source: probe it now instead (its own cadence then sets the next)
            log.error("source %s: due time %r is not a number; probing it now", src.id, due)
            due = time.monotonic()
        src.token = next(self._tokens)
        heapq.heappush(self.heap, (due, src.token, src.id))

    def add(self, src: Source, due: float) -> None:
        old = self.sources.get(src.id)
        if old is not None:
            self.retire(old)
        self.sources[src.id] = src
        self._count(src.state.status, 1)
        self.schedule(src, due)

    def retire(self, src: Source) -> None:
        src.removed = True
        src.token = 0
        if self.sources.get(src.id) is src:
            del self.sources[src.id]
            self._count(src.state.status, -1)
        if src.plugin is not None and not src.in_flight:
            self._close_later(src.plugin)

    def _close_later(self, plugin: plugins.Plugin) -> None:
        task = asyncio.ensure_future(_quiet_close(plugin))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def take_on_gradually(self, rows: list[dict[str, Any]], chunk: int = CHUNK) -> None:
        """Start probing these sources (start-up, sources added or changed, shards taken
        over), each placed by the one rule of healthd/core/placement.py. A source this runtime
        already probes keeps its debounce state; its new definition is probed promptly.

        Built and added ``chunk`` at a time with the event loop turning in between, so
        probes already running are recorded and dispatched on time (75,000 sources built
        in one go held the loop for seconds, longer than a lease TTL on a loaded machine).
        The batch is still placed as one."""
        now, wall = time.monotonic(), time.time()
        built: list[tuple[Source, placement.Candidate]] = []
        for i in range(0, len(rows), chunk):
            if i:
                await asyncio.sleep(0)
            built += self._build(rows[i : i + chunk], now, wall)
        now = time.monotonic()
        due = placement.place((c for _, c in built), now)
        for i in range(0, len(built), chunk):
            if i:
                await asyncio.sleep(0)
            for src, _ in built[i : i + chunk]:
                old = self.sources.get(src.id)
                if old is not None:
                    src.state = old.state  # probed while this batch was being built
                self.add(src, due[src.id])

    def _build(
        self, rows: list[dict[str, Any]], now: float, wall: float
    ) -> list[tuple[Source, placement.Candidate]]:
        built: list[tuple[Source, placement.Candidate]] = []
        for row in rows:
            old = self.sources.get(row["id"])
            src = build_source(row, self.settings, old.state if old else None)
            th = src.thresholds
            period = th.retry_interval if src.state.pending else th.interval
            natural = None
            if old is None:
                # config_changed_at, not updated_at: every status write moves updated_at
                # (migrations/0006_config_changed_at.sql), and the daemon loads only this one
                last, changed = row.get("last_tested_at"), row.get("config_changed_at")
                natural = placement.natural_due(
                    now,
                    wall,
                    last.timestamp() if isinstance(last, datetime) else None,
                    changed.timestamp() if isinstance(changed, datetime) else None,
                    period,
                )
            built.append((src, placement.Candidate(src.id, period, natural)))
        return built

    def retire_many(self, srcs: list[Source]) -> None:
        """``retire`` for many sources at once (a shard handed over): every one stops
        being probed now, and one task closes their plugins (a task each was seconds of
        the loop's time for 75,000)."""
        closing: list[plugins.Plugin] = []
        for src in srcs:
            if src.plugin is not None and not src.in_flight:
                closing.append(src.plugin)
                src.plugin = None  # closed below, not by retire()
            self.retire(src)
        if closing:
            task = asyncio.ensure_future(_close_many(closing))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    # -- dispatch ------------------------------------------------------------------
    def dispatch(self) -> int:
        """Start every due probe (bounded by the concurrency cap); return how many."""
        now = time.monotonic()
        started = 0
        heap = self.heap
        while (
            heap
            and heap[0][0] <= now
            and len(self.busy) < self.settings.concurrency
            and self.accepting
        ):
            due, token, sid = heapq.heappop(heap)
            src = self.sources.get(sid)
            if src is None or src.token != token:
                continue
            if sid in self.busy:
                # the replaced copy of this source is still in flight: try again shortly,
                # so one source never has two probes in flight
                self.schedule(src, now + 0.1)
                continue
            lag = now - due
            self.metrics.lag.observe(lag)
            lags = self.counters.lags
            if len(lags) < LAG_SAMPLES:
                lags.append(lag)
            if lag > self.counters.max_lag:
                self.counters.max_lag = lag
            src.in_flight = True
            self.busy.add(sid)
            task = asyncio.ensure_future(self._probe(src))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            started += 1
        return started

    async def _probe(self, src: Source) -> None:
        try:
            started = time.monotonic()
            if src.plugin is None:
                result = plugins.ProbeResult.error(src.broken or "invalid source")
            else:
                result = await plugins.run_check(src.plugin, src.timeout)
            self.metrics.probe(
                src.plugin_name if src.plugin is not None else "invalid",
                result.status,
                time.monotonic() - started,
                result.phases,
            )
            self._record(src, result)
        finally:
            src.in_flight = False
            self.busy.discard(src.id)
            if src.removed and src.plugin is not None:
                self._close_later(src.plugin)

    def _record(self, src: Source, result: plugins.ProbeResult) -> None:
        if src.removed:
            return  # removed or replaced while in flight: its result is stale
        obs = Observation(result.status, result.message, time.time())
        # the previous raw result, from the persisted history: survives a restart
        was_failing = src.state.recent[-1:] not in ("", debounce.LETTERS[CONNECTED])
        out = debounce.step(src.state, obs, src.thresholds)
        old, new = src.state.status, out.state.status
        if old != new:
            self._count(old, -1)
            self._count(new, 1)
        src.state = out.state
        self.counters.probes += 1
        # came back, as the original counted it for every source: a good result after a
        # failed one, or a held connection that had to be opened again
        back = result.status == CONNECTED and (result.reconnected or was_failing)
        if back:
            self.counters.reconnects += 1
            self.came_back.add(src.id)
            log.info(
                "source %s: reconnected",
                src.id,
                extra={"source_id": src.id, "event": "reconnected"},
            )
        gen = self.generation(src.id)
        self.sink.add_result(
            ResultRow(src.id, obs, result.latency_ms, out.state, back, gen, phases=result.phases)
        )
        for ev in out.events:
            self.sink.add_event(src.id, ev, gen)
            log.info(
                "%s",
                event_line(src.id, ev),
                extra={
                    "source_id": src.id,
                    "event": ev.kind,
                    "from_status": ev.from_status,
                    "to_status": ev.to_status,
                },
            )
        self.schedule(src, time.monotonic() + (out.next_due - obs.at))

    async def drain(self, grace: float) -> None:
        """Stop starting probes; let those in flight finish for ``grace`` s, cancel the rest."""
        self.accepting = False
        pending = [t for t in self.tasks if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for t in still:
                t.cancel()
            if still:
                await asyncio.gather(*still, return_exceptions=True)

    async def close_all(self) -> None:
        await asyncio.gather(
            *(_quiet_close(s.plugin) for s in self.sources.values() if s.plugin),
            return_exceptions=True,
        )

    def most_overdue(self, now: float) -> float:
        """How late the most overdue source is, in seconds (0 when none is late): the
        heap's first live entry, since schedule() keeps every due time a number. Stale
        entries on top are dropped on the way (dispatch would drop them anyway), so this is
        cheap enough to ask at every watchdog ping (a scan of every source was 4 % of a
        worker's CPU at 50,000 sources)."""
        heap, sources = self.heap, self.sources
        while heap:
            due, token, sid = heap[0]
            src = sources.get(sid)
            if src is not None and src.token == token:
                return max(0.0, now - due)
            heapq.heappop(heap)
        return 0.0

    def restate(self, src: Source, state: State) -> None:
        """Give a source the state read back from the table (its write did not land),
        keeping the counts the summary line reads."""
        if self.sources.get(src.id) is src:
            self._count(src.state.status, -1)
            self._count(state.status, 1)
        src.state = state

    def _count(self, status: str, n: int) -> None:
        if status == CONNECTED:
            self.healthy += n
        elif status == UNKNOWN:
            self.unknown += n

    def status_counts(self) -> tuple[int, int]:
        """(healthy, failed); a source not probed yet is neither: at a cold start of
        80,000 sources the line said "24,395 failed" for those still waiting their turn."""
        return self.healthy, len(self.sources) - self.healthy - self.unknown

    def take_summary(self) -> Summary:
        """The counts for the summary line; the per-interval counters start over."""
        healthy, failed = self.status_counts()
        c = self.counters
        # sources, not events: one that came back twice in the interval counts once
        reconnected = len(self.came_back)
        self.came_back.clear()
        behind, c.max_lag = c.max_lag, 0.0
        return Summary(healthy, failed, reconnected, behind)

    def lag_p99(self) -> float | None:
        """The 99th percentile of the schedule lag over the run (sampled), if any."""
        lags = self.counters.lags
        if not lags:
            return None
        return statistics.quantiles(lags, n=100)[98] if len(lags) > 1 else lags[0]


async def _close_many(closing: list[plugins.Plugin]) -> None:
    for i, plugin in enumerate(closing):
        if i % CHUNK == CHUNK - 1:
            await asyncio.sleep(0)  # closes that return at once never yield
        await _quiet_close(plugin)


async def _quiet_close(plugin: plugins.Plugin | None) -> None:
    if plugin is None:
        return
    try:
        await asyncio.wait_for(plugin.close(), 5)
    except Exception:  # noqa: BLE001 - closing a broken connection must not stop anything
        log.debug("closing plugin %s failed", plugin.name, exc_info=True)
