"""The verdict on a schema (healthd/core/schema.py): every state but "exactly what this
healthd ships" is one line naming `healthd migrate`."""

from __future__ import annotations

from healthd.core.schema import MIGRATE, Applied, judge

KNOWN = {1: "0001_a.sql", 2: "0002_b.sql", 4: "0004_d.sql"}  # a gap, as 0005 is today


def applied(*versions: int) -> list[Applied]:
    return [Applied(v, KNOWN.get(v, f"{v:04d}_newer.sql")) for v in versions]


def test_the_known_schema_is_ok() -> None:
    s = judge(applied(1, 2, 4), KNOWN)
    assert s.ok and s.pending == () and s.unknown == ()


def test_every_other_state_is_one_line_naming_migrate() -> None:
    cases = {
        "never migrated": judge(None, KNOWN),
        "never migrated:": judge([], KNOWN),
        "original data_sources table, not adopted yet": judge(None, KNOWN, original_table=True),
        "1 migration(s) behind this healthd (0004_d.sql pending)": judge(applied(1, 2), KNOWN),
        "newer healthd's `healthd migrate` (0007_newer.sql applied; this healthd knows"
        " migrations up to 0004)": judge(applied(1, 2, 4, 6, 7), KNOWN),
        "another tool's": judge(None, KNOWN, foreign="schema_migrations is another tool's"),
    }
    for words, state in cases.items():
        assert not state.ok
        assert words in state.problem and MIGRATE in state.problem, state.problem
        assert "\n" not in state.problem


def test_a_newer_schema_is_newer_even_with_something_pending() -> None:
    s = judge(applied(1, 4, 5), KNOWN)
    assert s.pending == ("0002_b.sql",) and [a.version for a in s.unknown] == [5]
    assert "newer healthd" in s.problem
