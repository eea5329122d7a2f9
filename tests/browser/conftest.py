"""Fixtures of the browser tests: a headless Chromium from Debian, driven by Playwright.

The browser is the system's (``shutil.which("chromium")``, the Debian package ``chromium``,
installed by ``make browser``); Playwright is used only as a client and never downloads a
browser of its own. Without Playwright or without Chromium every test here is skipped, with the
reason. A test that fails saves a screenshot of each of its pages under its pytest temporary
folder and names the file in its report.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_ui import Tab

#: The page size: wide enough for JupyterLab's toolbar and a check cell's picture.
VIEWPORT = {"width": 1400, "height": 1000}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, screenshot every open page of the test into its tmp_path, and say where."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    tmp_path = item.funcargs.get("tmp_path")
    pages = [v.page for v in item.funcargs.values() if isinstance(v, Tab)]
    if tmp_path is None or not pages:
        return
    saved = []
    for k, page in enumerate(pages):
        path = Path(tmp_path) / f"failure-{k}.png"
        try:
            page.screenshot(path=str(path), full_page=False)
        except Exception as error:  # the page may have crashed: the report must still be written
            saved.append(f"(no screenshot: {error})")
        else:
            saved.append(str(path))
    report.sections.append(("screenshots", "\n".join(saved)))


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system Chromium, or a skip that says how to install it."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("no Chromium: the browser tests need the Debian package chromium (make browser, as root)")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    """One headless Chromium for the session (``--no-sandbox`` as root, where Chromium's own
    sandbox refuses to start)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="no Playwright: pip install -e '.[dev]' (the browser tests' client)"
    )
    args = ["--disable-dev-shm-usage", "--disable-gpu"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=args, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def tab(browser, tmp_path: Path) -> Iterator[Tab]:
    """A fresh page in a context of its own (no cookies, storage or cache shared between tests),
    with the console messages and uncaught errors of its scripts."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield Tab(page)
    context.close()
