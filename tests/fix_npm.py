"""Packages from the npm registry that some tests drive (axe-core in the browser,
shields' badge-maker). .ci/run installs them before the tests run and names the folder in
HEALTHD_TEST_NODE_MODULES; without it (a plain local `pytest`) they are installed once per
test process into a temporary folder with the machine's npm."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

NODE = shutil.which("node")
NPM = shutil.which("npm")
INSTALL_TIMEOUT = 300.0


@pytest.fixture(scope="session")
def npm_modules(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``install("axe-core@4")`` -> the node_modules folder that holds it."""
    root = tmp_path_factory.mktemp("npm")
    ready = os.environ.get("HEALTHD_TEST_NODE_MODULES")

    def install(spec: str) -> Path:
        if not (NODE and NPM):
            pytest.skip("node and npm are not installed")
        name = spec[: spec.rindex("@")] if spec.rfind("@") > 0 else spec
        if ready and (Path(ready) / name).is_dir():
            return Path(ready)
        modules = root / "node_modules"
        if not (modules / name).is_dir():
            done = subprocess.run(
                [NPM, "install", "--no-audit", "--no-fund", "--silent", "--prefix", root, spec],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
            assert done.returncode == 0, f"npm install {spec}: {done.stderr.strip()[-2000:]}"
        return modules

    return install


def node(modules: Path, script: str, stdin: str = "", timeout: float = 60.0) -> str:
    """Run ``script`` with node, ``modules`` on its require path; its stdout."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, "-e", script],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NODE_PATH": str(modules)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
