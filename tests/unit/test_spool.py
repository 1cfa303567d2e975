"""The spool file without a database: round trip, the database it belongs to, bad files."""

from __future__ import annotations

from pathlib import Path

from healthd.core.debounce import Event, Observation, State
from healthd.daemon import spool
from healthd.store.codec import Pending, ResultRow

DB = {"system": "7712238701662620749", "database": "healthd"}


def rows() -> tuple[list[ResultRow], list[Pending]]:
    streak = (Observation("error", "HTTP 500 \u2026", 1.5), Observation("error", "x", 2.25))
    st = State("connected", "error", 2, streak, "ccee", True, 31.5)
    results = [ResultRow("web", streak[-1], 12.5, st, True, 7)]
    events = [
        Pending("web", Event("transition", "connected", "error", "HTTP 500", 2.25, streak), 7),
        Pending("db", Event("flapping_started", "connected", "connected", "p", 3.0), None),
    ]
    return results, events


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    results, events = rows()
    path = spool.save(tmp_path / "spool", DB, "node-1", results, events)
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    files, batches = spool.load(tmp_path / "spool", DB)
    assert files == [path]
    assert batches == [(results, events)]
    spool.remove(files)
    assert spool.load(tmp_path / "spool", DB) == ([], [])


def test_another_database_is_left_alone(tmp_path: Path) -> None:
    results, events = rows()
    path = spool.save(tmp_path, DB, "n", results, events)
    assert spool.load(tmp_path, {**DB, "database": "other"}) == ([], [])
    assert spool.load(tmp_path, None) == ([], [])
    assert path.exists()


def test_newest_first_and_a_bad_file_is_set_aside(tmp_path: Path) -> None:
    results, events = rows()
    older = spool.save(tmp_path, DB, "n", results, [])
    newer = spool.save(tmp_path, DB, "n", [], events)
    bad = tmp_path / "spool-0-1.json"
    bad.write_text("{not json")
    files, batches = spool.load(tmp_path, DB)
    assert files == [newer, older]
    assert batches == [([], events), (results, [])]
    assert not bad.exists() and bad.with_suffix(".bad").exists()


def test_default_dir_follows_systemd_then_xdg() -> None:
    assert spool.default_dir({"STATE_DIRECTORY": "/var/lib/healthd:/x"}) == Path("/var/lib/healthd")
    assert spool.default_dir({"XDG_STATE_HOME": "/s"}) == Path("/s/healthd")
    assert spool.default_dir({"HOME": "/home/h"}) == Path("/home/h/.local/state/healthd")


def test_a_spool_that_cannot_be_written_leaves_no_tmp(tmp_path: Path) -> None:
    """The disk full at stop (RLIMIT_FSIZE in a child process: writes past 4 KiB fail with
    EFBIG as they would with ENOSPC): save raises, and no half-written .tmp is left."""
    import subprocess
    import sys

    child = f"""
import resource, signal, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from tests.unit.test_spool import DB, rows
from healthd.daemon import spool
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
results, events = rows()
try:
    spool.save(__import__("pathlib").Path({str(tmp_path)!r}), DB, "n", results * 200, events)
except OSError as exc:
    print("refused", exc.errno)
"""
    r = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("refused"), r
    assert sorted(p.name for p in tmp_path.iterdir()) == []
