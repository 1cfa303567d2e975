"""The generated parts of docs/ say what the code says (docs/generate.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_docs_are_current() -> None:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    stale = gen.stale()
    assert not stale, f"run `python docs/generate.py`: {sorted(p.name for p in stale)} out of date"


def test_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    assert len(readme.splitlines()) <= 250
    for command in ("pip install -e . && healthd up", "bash .ci/run"):
        assert command in readme, command
    for page in ("configuration", "cli", "api", "plugins", "notifications", "operations"):
        assert f"docs/{page}.md" in readme, page
