"""Where `healthd up` keeps its cluster when no --data-dir is given."""

from __future__ import annotations

from pathlib import Path

from healthd.local.up import ROOT_BASE, data_dir_for


def test_explicit_data_dir_wins(tmp_path: Path) -> None:
    assert data_dir_for(tmp_path / "x", tmp_path, 0) == tmp_path / "x"
    assert data_dir_for(tmp_path / "x", tmp_path, 1000) == tmp_path / "x"


def test_a_user_keeps_it_in_the_working_directory(tmp_path: Path) -> None:
    assert data_dir_for(None, tmp_path, 1000) == tmp_path / ".healthd"


def test_root_keeps_it_where_postgres_can_reach_it_one_per_directory(tmp_path: Path) -> None:
    a, b = tmp_path / "healthd", tmp_path / "other" / "healthd"
    for d in (a, b):
        d.mkdir(parents=True)
    first = data_dir_for(None, a, 0)
    assert first.parent == ROOT_BASE and first.name.startswith("healthd-")
    assert data_dir_for(None, a, 0) == first  # the next run finds it again
    assert data_dir_for(None, b, 0) != first  # another checkout gets its own


def test_root_leaves_a_users_cluster_alone(tmp_path: Path) -> None:
    # a ./.healthd a non-root user made (owned by them, not by postgres) is not taken over
    (tmp_path / ".healthd" / "data").mkdir(parents=True)
    (tmp_path / ".healthd" / "data" / "PG_VERSION").write_text("15\n")
    assert data_dir_for(None, tmp_path, 0).parent == ROOT_BASE
