"""The local spool: what the daemon could not write before it stopped.

At stop, results and events still buffered (the database was unreachable) are written to
a file in the spool directory ($STATE_DIRECTORY under systemd, which the unit sets up with
StateDirectory=); the next start writes them before anything else, so a transition found
just before a restart during an outage is not lost. Each row keeps the lease generation it
was probed under: if another daemon took the shard meanwhile, the fence drops it.

A file names the database it belongs to (system identifier and database name): a daemon
pointed at another database leaves it alone. Files are written whole (temp file, fsync,
rename) and removed once their rows are written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from healthd.core.debounce import Event, Observation, State
from healthd.store.codec import Pending, ResultRow

log = logging.getLogger("healthd.daemon.spool")

VERSION = 1
PATTERN = "spool-*.json"


def default_dir(env: Mapping[str, str] | None = None) -> Path:
    """$STATE_DIRECTORY (systemd's StateDirectory=), else $XDG_STATE_HOME/healthd, else
    ~/.local/state/healthd."""
    env = os.environ if env is None else env
    state = env.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return Path(state)
    xdg = env.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg else Path(env.get("HOME") or os.path.expanduser("~")) / ".local/state"
    return base / "healthd"


def _obs(o: Observation) -> list[Any]:
    return [o.status, o.message, o.at]


def _obs_back(v: list[Any]) -> Observation:
    return Observation(str(v[0]), str(v[1]), float(v[2]))


def encode(results: list[ResultRow], events: list[Pending]) -> dict[str, Any]:
    return {
        "results": [
            {
                "id": r.source_id,
                "obs": _obs(r.obs),
                "latency_ms": r.latency_ms,
                "reconnected": r.reconnected,
                "gen": r.gen,
                "state": {
                    "status": r.state.status,
                    "pending": r.state.pending,
                    "count": r.state.count,
                    "streak": [_obs(o) for o in r.state.streak],
                    "recent": r.state.recent,
                    "flapping": r.state.flapping,
                    "percent": r.state.percent,
                },
            }
            for r in results
        ],
        "events": [
            {
                "id": p.source_id,
                "gen": p.gen,
                "kind": p.event.kind,
                "from": p.event.from_status,
                "to": p.event.to_status,
                "message": p.event.message,
                "at": p.event.at,
                "results": [_obs(o) for o in p.event.results],
            }
            for p in events
        ],
    }


def decode(data: Mapping[str, Any]) -> tuple[list[ResultRow], list[Pending]]:
    results = []
    for r in data.get("results", []):
        st = r["state"]
        state = State(
            status=st["status"],
            pending=st["pending"],
            count=int(st["count"]),
            streak=tuple(_obs_back(o) for o in st["streak"]),
            recent=st["recent"],
            flapping=bool(st["flapping"]),
            percent=float(st["percent"]),
        )
        results.append(
            ResultRow(
                r["id"], _obs_back(r["obs"]), r["latency_ms"], state, r["reconnected"], r["gen"]
            )
        )
    events = [
        Pending(
            e["id"],
            Event(
                e["kind"],
                e["from"],
                e["to"],
                e["message"],
                float(e["at"]),
                tuple(_obs_back(o) for o in e["results"]),
            ),
            e["gen"],
        )
        for e in data.get("events", [])
    ]
    return results, events


def save(
    directory: Path,
    database: Mapping[str, str] | None,
    node: str,
    results: list[ResultRow],
    events: list[Pending],
) -> Path:
    """Write one spool file atomically; return its path. Raises OSError."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = {
        "version": VERSION,
        "database": dict(database) if database else None,
        "node": node,
        "written_at": time.time(),
        **encode(results, events),
    }
    path = directory / f"spool-{time.time_ns()}-{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            # surrogatepass is not needed: every message passed the plugin guard
            json.dump(body, f, ensure_ascii=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # a disk full at stop (ENOSPC) must not leave half a file behind for the next
        # start to stumble on and for the operator to clean up
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def load(
    directory: Path, database: Mapping[str, str] | None
) -> tuple[list[Path], list[tuple[list[ResultRow], list[Pending]]]]:
    """The spool files of this database, newest first, and their rows. Files of another
    database are left alone; unreadable ones are renamed *.bad (and logged)."""
    files: list[Path] = []
    batches: list[tuple[list[ResultRow], list[Pending]]] = []
    try:
        found = sorted(directory.glob(PATTERN), reverse=True)
    except OSError:
        return files, batches
    for path in found:
        try:
            data = json.loads(path.read_text("utf-8"))
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            if data.get("database") != (dict(database) if database else None):
                continue
            batches.append(decode(data))
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            log.error("spool file %s is unreadable (%s); renamed to *.bad", path, exc)
            with contextlib.suppress(OSError):
                path.rename(path.with_suffix(".bad"))
            continue
        files.append(path)
    return files, batches


def remove(files: list[Path]) -> None:
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
