"""Whether a database's schema is the one this healthd knows: the verdict on what
`schema_migrations` holds against the migrations this healthd ships (pure; the reading
is healthd/store/migrate.py's, and statusapi/api/meta.py's for /readyz).

A daemon runs only on a schema it knows; every other state is one line for the
operator naming `healthd migrate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

MIGRATE = "`healthd migrate`"


@dataclass(frozen=True)
class Applied:
    """One row of ``schema_migrations``."""

    version: int
    name: str
    applied_at: datetime | None = None


@dataclass(frozen=True)
class Mapped:
    """One value the adoption of an original table changed (healthd/store/adopt.py)."""

    source_id: str
    column: str
    original: str | None
    adopted: str | None


@dataclass(frozen=True)
class Adopted:
    """The record of an adopted original ``data_sources`` table (``healthd_adoption``)."""

    at: datetime
    time_zone: str
    rows: int
    counts: tuple[tuple[str, int], ...] = ()  # values mapped, per column, by column name
    mapped: tuple[Mapped, ...] = ()  # the first of them (healthd_adoption has them all)

    @property
    def total_mapped(self) -> int:
        return sum(n for _, n in self.counts)


@dataclass(frozen=True)
class SchemaState:
    applied: tuple[Applied, ...]
    pending: tuple[str, ...]  # names of the migrations this healthd has and the database lacks
    unknown: tuple[Applied, ...]  # applied, but not shipped with this healthd (a newer one's)
    problem: str  # "" when a daemon may run; else one line naming `healthd migrate`
    adopted: Adopted | None = None
    original_table: bool = False  # an original data_sources table, not adopted yet

    @property
    def ok(self) -> bool:
        return not self.problem


def judge(
    applied: Sequence[Applied] | None,
    known: Mapping[int, str],
    *,
    foreign: str = "",
    original_table: bool = False,
    adopted: Adopted | None = None,
) -> SchemaState:
    """The verdict on a database whose ``schema_migrations`` holds ``applied`` (``None``:
    there is no such table) for a healthd shipping ``known`` (version -> file name).

    ``foreign`` says why a ``schema_migrations`` table is not healthd's (another tool's
    table of that name); ``original_table``: ``data_sources`` is the original backend's,
    not adopted yet.
    """
    if foreign:
        problem = f"{foreign}: {MIGRATE} cannot use this database"
        return SchemaState((), (), (), problem, adopted, original_table)
    rows = tuple(sorted(applied or (), key=lambda a: a.version))
    done = {a.version for a in rows}
    pending = tuple(name for v, name in sorted(known.items()) if v not in done)
    unknown = tuple(a for a in rows if a.version not in known)
    if unknown:
        newest = max(known) if known else 0
        problem = (
            f"the database was migrated by a newer healthd's {MIGRATE} ({unknown[-1].name}"
            f" applied; this healthd knows migrations up to {newest:04d}): upgrade this healthd"
        )
    elif applied is None or not done:
        problem = (
            "the database holds the original data_sources table, not adopted yet:"
            if original_table
            else "the database was never migrated:"
        ) + f" run {MIGRATE}"
    elif pending:
        problem = (
            f"the database schema is {len(pending)} migration(s) behind this healthd"
            f" ({', '.join(pending)} pending): run {MIGRATE}"
        )
    else:
        problem = ""
    return SchemaState(rows, pending, unknown, problem, adopted, original_table)
