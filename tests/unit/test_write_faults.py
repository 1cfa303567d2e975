"""Pure parts of the write path's fault handling: what counts as a refusal of a row's
content, what needs reading back, how late the latest source is."""

from __future__ import annotations

import asyncio
import math
import time

import psycopg

from healthd.config.settings import Settings
from healthd.core.debounce import Event, Observation, State
from healthd.daemon.dispatch import Runtime, build_source
from healthd.store.codec import Pending, ResultRow
from healthd.store.refusals import _replaced_event, _replaced_result, refused_for_content
from healthd.store.status import Outcome
from tests.fix_db import DiscardSink, source_row


def test_content_refusals_versus_session_refusals() -> None:
    assert refused_for_content(psycopg.errors.CharacterNotInRepertoire("NUL"))
    assert refused_for_content(psycopg.errors.UntranslatableCharacter("\\u0000"))
    assert refused_for_content(psycopg.errors.CheckViolation("status"))
    assert refused_for_content(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates"))
    # the session or the server: wait and retry the whole batch instead
    assert not refused_for_content(psycopg.errors.ReadOnlySqlTransaction("read-only"))
    assert not refused_for_content(psycopg.errors.QueryCanceled("statement timeout"))
    assert not refused_for_content(psycopg.errors.InsufficientPrivilege("denied"))
    assert not refused_for_content(psycopg.OperationalError("gone"))


def test_replaced_rows_keep_their_status_and_lose_every_message() -> None:
    obs = Observation("error", "bad\x00", 1.0)
    row = ResultRow("a", obs, 1.0, State("connected", "error", 1, (obs,)), False, 3)
    exc = psycopg.errors.CharacterNotInRepertoire("invalid byte sequence")
    new = _replaced_result(row, exc)
    assert new.obs.status == "error" and new.gen == 3
    assert "\x00" not in new.obs.message and "refused" in new.obs.message
    assert all("\x00" not in o.message for o in new.state.streak)
    ev = _replaced_event(
        Pending("a", Event("transition", "connected", "error", "bad\x00", 1.0, (obs,)), 3), exc
    )
    assert "\x00" not in ev.event.message and ev.event.to_status == "error" and ev.gen == 3


def test_what_did_not_land_is_read_back() -> None:
    out = Outcome(conflicts=["a"], stale=["b"], replaced=["c"], dropped=["d"])
    # a stale row is not ours any more: the lease round drops the source instead
    assert out.unlanded() == {"a", "c", "d"}


def test_most_overdue_is_the_first_live_entry_and_the_heap_stays_ordered() -> None:
    async def go() -> None:
        rt = Runtime(Settings(), DiscardSink())
        row = source_row("x")
        rt.add(build_source(row, Settings()), 100.0)
        rt.add(build_source({**row, "id": "y"}, Settings()), 50.0)
        assert rt.most_overdue(40.0) == 0.0
        assert rt.most_overdue(110.0) == 60.0
        # a replaced source's old entry is not counted
        rt.add(build_source({**row, "id": "y"}, Settings()), 105.0)
        assert rt.most_overdue(110.0) == 10.0
        # a due time that is not a number never enters the heap: it would break its order
        # and starve the others; that source is due now instead
        before = time.monotonic()
        rt.add(build_source({**row, "id": "z"}, Settings()), math.nan)
        assert all(math.isfinite(due) for due, _, _ in rt.heap)
        live = [(due, sid) for due, token, sid in rt.heap if rt.sources[sid].token == token]
        assert sorted(live)[-1][1] == "z" and sorted(live)[-1][0] >= before
        assert [sid for _, sid in sorted(live)] == ["x", "y", "z"]
        assert rt.most_overdue(110.0) == 10.0

    asyncio.run(go())
