"""The browser of the status page's tests: Debian's chromium, headless, driven through
/usr/bin/chromedriver by selenium; screenshots when HEALTHD_SCREENSHOTS names a folder."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# what a browser test module marks itself with: slow, and skipped without the browser
BROWSER_TESTS = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
        reason="Debian's chromium and chromium-driver are not installed",
    ),
]

Browser = Callable[..., Any]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []

    def start(javascript: bool = True, width: int = 1200, height: int = 900) -> Any:
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / f'chrome-{len(drivers)}'}",
            f"--window-size={width},{height}",
        ):
            opts.add_argument(arg)
        if not javascript:
            opts.add_experimental_option(
                "prefs", {"profile.managed_default_content_settings.javascript": 2}
            )
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    yield start
    for d in drivers:
        d.quit()


def screenshot(driver: Any, name: str) -> None:
    """The whole page as a PNG (Chrome's own capture beyond the viewport)."""
    folder = os.environ.get("HEALTHD_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    width, height = driver.execute_script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollHeight]"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 6000), "scale": 1},
        },
    )
    (Path(folder) / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
