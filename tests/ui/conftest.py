"""What the browser tests share: a real API process (alone, or with a worker and dispatcher
for every kind) and a page of Debian's Chromium at phone width."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aigc.cli.stack import spawn, stop_process, wait_for_http
from aigc.settings import Settings
from tests.live import isolated_broker, stack_env, started_worker

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
PHONE = {"width": 375, "height": 812}
TIMEOUT_MS = 60_000  # a cold worker on a busy 2-core machine


@pytest.fixture
def api_alone(
    settings: Settings, tiny_models: Path, free_port: Callable[[], int], tmp_path: Path
) -> Iterator[tuple[str, Settings]]:
    """A real API process on a broker database of its own; no worker: jobs stay queued."""
    with isolated_broker(settings) as isolated:
        port = free_port()
        env = stack_env(isolated, tiny_models)
        api = spawn("api", ["api", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{url}/healthz", 60, api)
            yield url, isolated
        finally:
            stop_process(api)


@pytest.fixture
def api_url(api_alone: tuple[str, Settings], tiny_models: Path, tmp_path: Path) -> Iterator[str]:
    """The API with a worker and dispatcher for every kind."""
    url, isolated = api_alone
    with started_worker(isolated, tiny_models, kinds="text,image,audio", log_dir=tmp_path):
        yield url


@pytest.fixture
def page() -> Iterator[Page]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        context = browser.new_context(viewport=PHONE, accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        # expect() has a timeout of its own, 5 s unless told: too short on a loaded machine.
        sync_api.expect.set_options(timeout=TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def fits_the_width(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def full_page_screenshot(page: Page, path: Path) -> None:
    """The whole page, taller than the phone's screen, as a PNG. Chromium can leave the page
    scrolled after it (seen on the job form), and the next click landed on another element:
    back to the top before anything else."""
    page.screenshot(path=path, full_page=True)
    page.evaluate("window.scrollTo(0, 0)")


def labels_missing(page: Page) -> list[str]:
    """The visible form controls a screen reader could not name: no <label>, no aria-label,
    and (for a button) no text."""
    return list(
        page.evaluate(
            """() => Array.from(document.querySelectorAll("input, select, textarea, button"))
              .filter(e => e.offsetParent !== null)
              .filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
                           && !(e.tagName === "BUTTON" && e.textContent.trim()))
              .map(e => e.outerHTML.slice(0, 100))"""
        )
    )
