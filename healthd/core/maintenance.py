"""Maintenance windows as an operator writes them, checked before anything is stored.

Pure: parsing (``30m``, ``now``, ``sun 02:00``), the occurrences of a window, and whether
two windows overlap. Whether a source is inside a window *now* is decided by PostgreSQL
(``healthd_window_occurrence`` in migrations/0009), where the daemon's transition writes
and the API read it; the expansion here mirrors that function for the overlap check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from healthd.core.errors import ConfigError

DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # PostgreSQL's dow: 0 = Sunday
DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MAX_STEPS = 20_000  # occurrences expanded for one overlap check, at most


@dataclass(frozen=True)
class Window:
    """One window. One-off: [starts_at, ends_at). Recurring: every week on ``every_dow``
    (0 = Sunday) or every day (None) at ``every_time`` in ``tz``, for ``duration``, from
    ``starts_at`` on. ``source_ids`` None: every source."""

    source_ids: tuple[str, ...] | None
    starts_at: datetime
    ends_at: datetime | None = None
    every_dow: int | None = None
    every_time: time | None = None
    tz: str = "UTC"
    duration: timedelta | None = None
    reason: str = ""
    id: int | None = None

    @property
    def recurring(self) -> bool:
        return self.every_time is not None

    def describe(self) -> str:
        if not self.recurring:
            assert self.ends_at is not None
            return f"{iso(self.starts_at)} to {iso(self.ends_at)}"
        assert self.every_time is not None and self.duration is not None
        day = "day" if self.every_dow is None else DAYS[self.every_dow]
        return (
            f"every {day} {self.every_time.strftime('%H:%M')} {self.tz} "
            f"for {format_duration(self.duration)}"
        )


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(raw: str, field: str) -> timedelta:
    """``30m``, ``1h``, ``2h30m``, ``1d``, ``90s`` (a bare number is minutes)."""
    text = raw.strip().lower()
    if text.isdigit():
        text += "m"
    m = _DURATION.match(text)
    if not text or not m or not any(m.groups()):
        raise ConfigError(field, f"must be a duration like 30m, 1h, 2h30m or 1d, got {raw!r}")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    value = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    if value <= timedelta(0):
        raise ConfigError(field, f"must be longer than zero, got {raw!r}")
    return value


def format_duration(d: timedelta) -> str:
    secs = int(d.total_seconds())
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs >= size:
            out += f"{secs // size}{unit}"
            secs %= size
    return out or "0s"


def parse_when(raw: str, field: str, now: datetime) -> datetime:
    """``now`` or an ISO 8601 time; a time without a zone is UTC."""
    if raw.strip().lower() == "now":
        return now
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(field, f"must be an ISO 8601 time or 'now', got {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_zone(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("--tz", f"unknown time zone {tz!r}") from None
    return tz


def parse_every(raw: str) -> tuple[int | None, time, str | None]:
    """``sun 02:00``, ``daily 02:00`` or ``02:00``, optionally followed by a zone
    (``sun 02:00 Europe/Berlin``) -> (dow or None for daily, time, zone or None)."""
    parts = raw.strip().split()
    bad = ConfigError(
        "--every", f"must look like 'sun 02:00' or 'daily 02:00' (optionally a zone), got {raw!r}"
    )
    if not parts:
        raise bad
    dow: int | None = None
    word = parts[0].lower()
    # a day by its name, short or long: "mon-fri" or "monkey" is no Monday
    if word[:3] in DAYS and word in (word[:3], DAY_NAMES[DAYS.index(word[:3])]):
        dow = DAYS.index(word[:3])
        parts = parts[1:]
    elif parts[0].lower() in ("daily", "day", "every-day"):
        parts = parts[1:]
    if not parts or len(parts) > 2:
        raise bad
    try:
        at = time.fromisoformat(parts[0])
    except ValueError:
        raise bad from None
    if at.tzinfo is not None:  # "02:00+05:00": the window's zone says where 02:00 is
        raise bad
    return dow, at, (check_zone(parts[1]) if len(parts) == 2 else None)


def build(
    source_ids: tuple[str, ...] | None,
    now: datetime,
    start: str | None,
    end: str | None,
    for_: str | None,
    every: str | None,
    tz: str | None,
    reason: str,
) -> Window:
    """The options of `healthd maintenance add` -> a Window, or a ConfigError naming the
    option at fault."""
    starts_at = parse_when(start or "now", "--start", now)
    if every is not None:
        return _recurring(source_ids, starts_at, end, for_, every, tz, reason)
    if tz is not None:
        raise ConfigError("--tz", "only applies to a recurring window (--every)")
    if (end is None) == (for_ is None):
        raise ConfigError("--end", "give either --end or --for")
    if end is not None:
        ends_at = parse_when(end, "--end", now)
    else:
        assert for_ is not None
        ends_at = starts_at + parse_duration(for_, "--for")
    if ends_at <= starts_at:
        raise ConfigError("--end", f"{iso(ends_at)} is not after --start {iso(starts_at)}")
    if ends_at <= now:
        raise ConfigError("--end", f"{iso(ends_at)} is in the past: the window would be over")
    return Window(source_ids, starts_at, ends_at, reason=reason)


def _recurring(
    source_ids: tuple[str, ...] | None,
    starts_at: datetime,
    end: str | None,
    for_: str | None,
    every: str,
    tz: str | None,
    reason: str,
) -> Window:
    if end is not None:
        raise ConfigError("--end", "does not apply to a recurring window (use --for)")
    if for_ is None:
        raise ConfigError("--for", "is required with --every")
    dow, at, zone = parse_every(every)
    if zone and tz and zone != tz:
        raise ConfigError("--tz", f"{tz!r} contradicts the zone in --every ({zone!r})")
    zone = check_zone(zone or tz or "UTC")
    duration = parse_duration(for_, "--for")
    period = timedelta(days=1 if dow is None else 7)
    if duration >= period:
        raise ConfigError(
            "--for", f"must be shorter than the recurrence ({format_duration(period)})"
        )
    return Window(source_ids, starts_at, None, dow, at, zone, duration, reason)


def occurrences(w: Window, lo: datetime, hi: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The occurrences of ``w`` that intersect [lo, hi), in order."""
    if not w.recurring:
        assert w.ends_at is not None
        if w.starts_at < hi and w.ends_at > lo:
            yield w.starts_at, w.ends_at
        return
    assert w.duration is not None and w.every_time is not None
    zone = ZoneInfo(w.tz)
    step = 1 if w.every_dow is None else 7
    day = (max(lo, w.starts_at) - w.duration - timedelta(days=8)).astimezone(zone).date()
    if w.every_dow is not None:
        day += timedelta(days=(w.every_dow - _dow(day)) % 7)
    for _ in range(MAX_STEPS):
        s = datetime.combine(day, w.every_time, tzinfo=zone).astimezone(UTC)
        if s >= hi:
            return
        if s >= w.starts_at and s + w.duration > lo:
            yield s, s + w.duration
        day += timedelta(days=step)


def _dow(d: date) -> int:
    return (d.weekday() + 1) % 7  # Python: Monday = 0; PostgreSQL: Sunday = 0


def shares_sources(a: Window, b: Window) -> bool:
    if a.source_ids is None or b.source_ids is None:
        return True
    return bool(set(a.source_ids) & set(b.source_ids))


def overlap(a: Window, b: Window, now: datetime) -> tuple[datetime, datetime] | None:
    """The first span where ``a`` and ``b`` are both open (from now on), or None.
    Two recurring windows repeat with a period of at most a week, so two weeks past the
    later start shows every way they can meet."""
    lo = max(now, a.starts_at, b.starts_at) - timedelta(days=8)
    if a.recurring and b.recurring:
        hi = max(now, a.starts_at, b.starts_at) + timedelta(days=15)
    else:
        one = b if a.recurring else a
        assert one.ends_at is not None
        lo, hi = max(lo, one.starts_at), one.ends_at
    theirs = list(occurrences(b, lo, hi))
    for s1, e1 in occurrences(a, lo, hi):
        for s2, e2 in theirs:
            if s1 < e2 and s2 < e1 and min(e1, e2) > now:
                return max(s1, s2), min(e1, e2)
    return None
