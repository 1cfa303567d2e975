"""A batch the database refused for its content, written again row by row: each row under
its own savepoint, a refused row retried with its messages replaced by the reason, and
dropped if even that is refused, so one bad row never costs the batch."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import psycopg

from healthd.core.debounce import Event, Observation
from healthd.core.errors import first_line
from healthd.plugins.guard import clean_text
from healthd.store.codec import Pending, ResultRow
from healthd.store.rollbuf import Taken
from healthd.store.status import HISTORY_LOCK, Outcome, write_events, write_results

log = logging.getLogger("healthd.store")

T = TypeVar("T")


def refused_for_content(exc: BaseException) -> bool:
    """The batch's content was refused (by the server or by the encoder before it), not
    the connection or the session: other rows of it can still be written."""
    if isinstance(exc, psycopg.Error):
        return isinstance(exc, psycopg.DataError | psycopg.IntegrityError) or (
            exc.sqlstate == "P0001"  # RAISE EXCEPTION in a trigger
        )
    return isinstance(exc, Exception)


def write_one_by_one(
    conn: psycopg.Connection[Any],
    results: list[ResultRow],
    events: list[Pending],
    rolls: Taken | None = None,
) -> Outcome:
    """A refused batch again, each row under its own savepoint: a row refused for its
    content is retried with its messages replaced by the reason, and dropped if even that
    is refused. Any other error (the connection, the session) is raised."""
    out = Outcome()
    with conn.transaction():
        if events:
            # taken here, outside the savepoints: one rolled back would release it
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (HISTORY_LOCK,))
        for r in results:
            _one(conn, out, r.source_id, _results_outcome, r, _replaced_result)
        for p in events:
            _one(conn, out, p.source_id, write_events, p, _replaced_event)
        if rolls:
            # numbers only, nothing to replace: refused (a trigger), they are dropped
            try:
                with conn.transaction():
                    write_results(conn, [], rolls)
            except Exception as exc:  # noqa: BLE001 - re-raised unless refused for content
                if not refused_for_content(exc):
                    raise
                log.error("latency rollups refused by the database (%s)", first_line(exc))
        if out.ids:
            conn.execute("SELECT pg_notify('healthd_events', %s)", (str(max(out.ids)),))
    return out


def _results_outcome(conn: psycopg.Connection[Any], row: ResultRow) -> Outcome:
    conn.execute("DELETE FROM healthd_results")  # the rows of earlier savepoints
    return Outcome(stale=write_results(conn, [row]))


def _one(
    conn: psycopg.Connection[Any],
    out: Outcome,
    sid: str,
    write: Callable[[psycopg.Connection[Any], T], Outcome],
    item: T,
    replaced: Callable[[T, BaseException], T],
) -> None:
    try:
        with conn.transaction():
            out.add(write(conn, item))
        return
    except Exception as exc:  # noqa: BLE001 - only a refusal of this row's content is handled
        if not refused_for_content(exc):
            raise
        reason: BaseException = exc
    out.reasons[sid] = first_line(reason)
    try:
        with conn.transaction():
            out.add(write(conn, replaced(item, reason)))
        out.replaced.append(sid)
    except Exception as exc:  # noqa: BLE001 - re-raised unless refused for content
        if not refused_for_content(exc):
            raise
        out.dropped.append(sid)


def _placeholder(exc: BaseException) -> str:
    return clean_text(f"(message not stored: the database refused it: {first_line(exc)})", 300)


def _obs(o: Observation, text: str) -> Observation:
    return replace(o, message=text)


def _replaced_result(r: ResultRow, exc: BaseException) -> ResultRow:
    text = _placeholder(exc)
    state = replace(r.state, streak=tuple(_obs(o, text) for o in r.state.streak))
    return replace(r, obs=_obs(r.obs, text), state=state)


def _replaced_event(p: Pending, exc: BaseException) -> Pending:
    text = _placeholder(exc)
    ev: Event = replace(
        p.event, message=text, results=tuple(_obs(o, text) for o in p.event.results)
    )
    return p._replace(event=ev)
