"""One job from the page's form in a real browser (Debian's Chromium, phone width) against a
real API, worker and dispatcher: a bad parameter is refused naming it, a double-click makes
one job, and the job's page follows it live to its image."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import TeamKey
from tests.ui.conftest import (
    CHROMIUM,
    fits_the_width,
    full_page_screenshot,
    labels_missing,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is not installed"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def test_submit_one_image_job_and_follow_it_to_its_image(
    page: Page, api_url: str, team: TeamKey, tmp_path: Path
) -> None:
    expect = sync_api.expect
    shots = tmp_path / "screenshots"
    page.goto(f"{api_url}/ui")
    page.get_by_label("API key").fill(team.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#team")).to_have_text(team.name)

    page.get_by_role("link", name="Submit one job").click()
    expect(page).to_have_url(f"{api_url}/ui/jobs/new")
    expect(page.get_by_label("max_new_tokens")).to_have_value("64")  # tiny-text's default
    page.get_by_label("Kind").select_option("image")
    # The image models replace the text ones, tiny-image's parameters with them.
    expect(page.get_by_label("Model")).to_have_value("tiny-image")
    steps = page.get_by_label("steps", exact=True)
    expect(steps).to_have_value("4")
    expect(page.get_by_label("max_new_tokens")).to_have_count(0)
    page.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk")
    steps.fill("2")
    page.get_by_label("seed", exact=True).fill("42")
    assert fits_the_width(page)
    full_page_screenshot(page, shots / "job-form.png")
    assert labels_missing(page) == []

    # Out of range: the API's answer names the parameter and no job is made.
    page.get_by_label("width", exact=True).fill("4096")
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("#notice")).to_contain_text("params.width")
    expect(page).to_have_url(f"{api_url}/ui/jobs/new")

    page.get_by_label("width", exact=True).fill("64")
    page.get_by_role("button", name="Submit job").dblclick()
    expect(page).to_have_url(re.compile(rf"{api_url}/ui/jobs/[0-9a-f-]{{36}}$"))
    job_id = page.url.rsplit("/", 1)[1]
    listed = httpx.get(f"{api_url}/v1/jobs", headers=team.headers, timeout=30).json()["data"]
    assert [job["id"] for job in listed] == [job_id]  # one job for the double-click

    # Followed live: queued or running at first, then its image without a reload.
    status = page.locator("#job-status")
    expect(status).to_have_text("succeeded")
    image = page.get_by_role("img", name=f"Image 0 for {job_id}")
    expect(image).to_be_visible()
    # Lazy-loaded: visible before its bytes arrive.
    image.scroll_into_view_if_needed()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    card = page.locator("#job-card")
    expect(card).not_to_have_attribute("hx-trigger", "live")  # ended: no more updates
    expect(card.locator("dd").filter(has_text=re.compile(r"^42$"))).to_have_count(1)  # seed
    expect(card.locator("code")).to_contain_text('"steps": 2')
    expect(card).to_contain_text("a lighthouse at dusk")
    assert fits_the_width(page)
    full_page_screenshot(page, shots / "job.png")
    assert labels_missing(page) == []

    with page.expect_download() as download:
        page.get_by_role("link", name="Download artifact 0").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".png" and saved.read_bytes().startswith(b"\x89PNG")

    page.get_by_role("link", name="All batches").click()
    expect(page).to_have_url(f"{api_url}/ui")
