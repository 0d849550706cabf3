"""The page at /ui in a real browser: Playwright drives Debian's Chromium against a real
API, worker and dispatcher. Sign in, follow a batch to its end, open it, search it,
download its ZIP; phone width throughout, and no request leaves the API's origin."""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from aigc.settings import Settings
from api.ui.router import ITEMS_SHOWN
from tests.conftest import TeamKey
from tests.ui.conftest import (
    CHROMIUM,
    TIMEOUT_MS,
    fits_the_width,
    full_page_screenshot,
    labels_missing,
)

PROMPTS = {"kite": "a red kite over the sea", "owl": "an owl at dusk", "fox": "a quick fox"}
MEDIA = [
    {"custom_id": "picture", "kind": "image", "model": "tiny-image", "prompt": "a kite"},
    {"custom_id": "song", "kind": "audio", "model": "tiny-audio", "prompt": "a kite"},
]
ITEMS = len(PROMPTS) + len(MEDIA)

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is not installed"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def test_sign_in_follow_a_batch_open_it_and_download_its_zip(
    page: sync_api.Page, api_url: str, team: TeamKey, tmp_path: Path
) -> None:
    expect = sync_api.expect
    shots = tmp_path / "screenshots"
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    jobs = [
        {"custom_id": name, "kind": "text", "model": "echo", "prompt": prompt}
        for name, prompt in PROMPTS.items()
    ] + MEDIA
    created = httpx.post(
        f"{api_url}/v1/batches", json={"jobs": jobs}, headers=team.headers, timeout=30
    )
    assert created.status_code == 202, created.text
    batch_id = created.json()["id"]

    page.goto(f"{api_url}/ui")
    key = page.get_by_label("API key")
    expect(key).to_be_visible()
    full_page_screenshot(page, shots / "sign-in.png")

    # A wrong key is refused and the form comes back.
    key.fill("aigc_wrong_key_000000000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#notice")).to_contain_text("refused")
    expect(key).to_be_visible()

    key.fill(team.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#team")).to_have_text(team.name)
    batch = page.locator(f"li.batch:has(a:text('{batch_id}'))")
    # Polled every 2 s: queued, running, then completed without a reload.
    expect(batch).to_have_attribute("data-status", "completed")
    expect(batch.locator("progress")).to_have_attribute("value", str(ITEMS))
    assert page.evaluate("sessionStorage.getItem('aigc-api-key')") == team.key
    assert page.evaluate("localStorage.length") == 0
    assert fits_the_width(page)
    full_page_screenshot(page, shots / "batches.png")
    assert labels_missing(page) == []

    batch.get_by_role("link").click()
    expect(page).to_have_url(f"{api_url}/ui/batches/{batch_id}")
    items = page.locator("li.item")
    expect(items).to_have_count(ITEMS)
    for name, prompt in PROMPTS.items():
        expect(items.filter(has_text=name).locator("pre.preview")).to_have_text(prompt)
    # The image is shown and the audio plays from their signed URLs: no key needed.
    image = items.filter(has_text="picture").locator("img")
    expect(image).to_be_visible()
    # Lazy-loaded: visible before its bytes arrive.
    image.scroll_into_view_if_needed()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    page.get_by_role("button", name="Enlarge image 0 for picture").click()
    lightbox = page.locator("#lightbox")
    expect(lightbox).to_be_visible()
    expect(lightbox.locator("img")).to_have_attribute("alt", "Image 0 for picture")
    page.screenshot(path=shots / "lightbox.png")
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    audio = items.filter(has_text="song").locator("audio[controls]")
    expect(audio).to_be_visible()
    audio_status = audio.evaluate(
        "a => fetch(a.src).then(r => r.status + ' ' + r.headers.get('content-type'))"
    )
    assert audio_status == "200 audio/wav"
    assert fits_the_width(page)
    full_page_screenshot(page, shots / "batch.png")
    assert labels_missing(page) == []

    page.get_by_label("Search custom_id or prompt").fill("owl")
    expect(items).to_have_count(1)
    expect(items.locator("h2")).to_have_text("owl")
    page.get_by_label("Status").select_option("failed")
    expect(page.locator("#items")).to_contain_text("No items match")
    page.get_by_label("Status").select_option("")
    page.get_by_label("Search custom_id or prompt").fill("")
    expect(items).to_have_count(ITEMS)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download ZIP").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == f"batch-{batch_id}.zip"
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
    assert "manifest.csv" in names and "results.jsonl" in names
    assert len([name for name in names if name.endswith(".txt")]) == len(PROMPTS)
    assert "4-picture-0.png" in names and "5-song-0.wav" in names

    # A reload keeps the session's key and lands on the same batch.
    page.reload()
    expect(items).to_have_count(ITEMS)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('aigc-api-key')") is None

    outside = [url for url in requested if not url.startswith((api_url, "blob:", "data:"))]
    assert outside == []


def _sign_in(page: sync_api.Page, api_url: str, team: TeamKey) -> None:
    page.goto(f"{api_url}/ui")
    page.get_by_label("API key").fill(team.key)
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.locator("#team")).to_have_text(team.name)


def _choose(page: sync_api.Page, name: str, body: bytes, mime_type: str) -> None:
    """Choose a batch file: the page checks it and shows its preview."""
    page.get_by_label("Batch file (CSV, XLSX or JSONL)").set_input_files(
        {"name": name, "mimeType": mime_type, "buffer": body}
    )
    sync_api.expect(page.locator("#preview-title")).to_contain_text(name)


def _upload(page: sync_api.Page, name: str, body: bytes, mime_type: str) -> None:
    _choose(page, name, body, mime_type)
    page.locator("#submit-batch").click()


def test_submit_batches_from_csv_and_jsonl_files(
    page: sync_api.Page, api_url: str, team: TeamKey, tmp_path: Path
) -> None:
    expect = sync_api.expect
    _sign_in(page, api_url, team)

    # Bad rows: listed by row and column on the preview, and nothing to submit.
    _choose(page, "bad.csv", b"prompt,model\nhi,echo\nhi,no-such-model\n,echo\n", "text/csv")
    errors = page.locator(".row-errors li")
    expect(errors).to_have_count(2)
    expect(errors.nth(0)).to_contain_text("Row 2, model")
    expect(errors.nth(1)).to_contain_text("Row 3, prompt: is required")
    expect(page.locator("#submit-batch")).to_have_count(0)
    expect(page.locator("li.batch")).to_have_count(0)

    _upload(
        page,
        "jobs.csv",
        b"prompt,custom_id,model\nfrom a table,t1,echo\nagain,t2,echo\n",
        "text/csv",
    )
    expect(page).to_have_url(re.compile(r"/ui/batches/[0-9a-f-]{36}$"))
    items = page.locator("li.item")
    expect(items).to_have_count(2)
    expect(items.filter(has_text="t1").locator("pre.preview")).to_have_text("from a table")
    assert fits_the_width(page)
    full_page_screenshot(page, tmp_path / "screenshots" / "submitted.png")

    page.get_by_role("link", name="All batches").click()
    jsonl = b'{"custom_id": "j1", "kind": "text", "model": "echo", "prompt": "line one"}\n'
    _upload(page, "jobs.jsonl", jsonl, "application/x-ndjson")
    expect(page).to_have_url(re.compile(r"/ui/batches/[0-9a-f-]{36}$"))
    expect(page.locator("li.item pre.preview")).to_have_text("line one")

    page.get_by_role("link", name="All batches").click()
    expect(page.locator("li.batch")).to_have_count(2)


def test_cancel_a_queued_batch_then_retry_it(
    page: sync_api.Page, api_alone: tuple[str, Settings], team: TeamKey
) -> None:
    expect = sync_api.expect
    api_url, _ = api_alone
    jobs = [
        {"custom_id": f"q{n}", "kind": "text", "model": "echo", "prompt": "p"} for n in range(3)
    ]
    created = httpx.post(
        f"{api_url}/v1/batches", json={"jobs": jobs}, headers=team.headers, timeout=30
    )
    assert created.status_code == 202, created.text
    batch_id = created.json()["id"]
    _sign_in(page, api_url, team)
    page.locator(f"li.batch a:text('{batch_id}')").click()
    status = page.locator("#summary .badge")
    expect(status).to_have_text("queued")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel batch").click()
    expect(status).to_have_text("canceled")
    expect(page.locator("li.item[data-status=canceled]")).to_have_count(len(jobs))

    page.get_by_role("button", name="Retry failed and canceled jobs").click()
    expect(page.locator("#notice")).to_be_empty()
    expect(status).to_have_text("queued")
    expect(page.locator("li.item[data-status=queued]")).to_have_count(len(jobs))
    expect(page.get_by_role("button", name="Cancel batch")).to_be_visible()

    # The same from the list, where each batch has its buttons.
    page.get_by_role("link", name="All batches").click()
    listed = page.locator(f"li.batch:has(a:text('{batch_id}'))")
    expect(listed).to_have_attribute("data-status", "queued")
    expect(listed).to_contain_text("the oldest has waited")
    page.once("dialog", lambda dialog: dialog.accept())
    listed.get_by_role("button", name=f"Cancel batch {batch_id}").click()
    expect(listed).to_have_attribute("data-status", "canceled")
    listed.get_by_role("button", name=f"Retry failed and canceled jobs of batch {batch_id}").click()
    expect(listed).to_have_attribute("data-status", "queued")


@pytest.mark.parametrize(
    ("rows", "kind", "model"),
    [
        pytest.param(200, "text", "echo", id="200-echo"),
        pytest.param(20, "image", "tiny-image", id="20-image", marks=pytest.mark.slow),
    ],
)
def test_a_campaign_from_a_csv_to_its_zip(
    page: sync_api.Page,
    api_url: str,
    team: TeamKey,
    tmp_path: Path,
    rows: int,
    kind: str,
    model: str,
) -> None:
    """What an editor does: choose the campaign's CSV, check its preview, submit it, watch it
    run, look at its results and download them. Prints the time from choosing the file to
    holding the ZIP (run with -rP to see it)."""
    expect = sync_api.expect
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    table = "custom_id,prompt,kind,model\n" + "".join(
        f"row-{n:03d},prompt number {n} of the campaign,{kind},{model}\n" for n in range(rows)
    )
    _sign_in(page, api_url, team)

    started = time.monotonic()
    _choose(page, "campaign.csv", table.encode(), "text/csv")
    expect(page.locator("#preview-title")).to_have_text(f"campaign.csv: {rows} rows")
    expect(page.locator("table.mapping tbody tr")).to_have_count(4)
    expect(page.locator("table.sample tbody tr").first).to_contain_text("row-000")
    full_page_screenshot(page, tmp_path / "screenshots" / "preview.png")
    assert labels_missing(page) == []
    page.get_by_role("button", name=f"Submit {rows} jobs").click()

    expect(page).to_have_url(re.compile(r"/ui/batches/[0-9a-f-]{36}$"))
    batch_id = page.url.rsplit("/", 1)[1]
    status = page.locator("#summary .badge")
    expect(status).to_have_text("completed", timeout=TIMEOUT_MS * 3)
    expect(page.locator("#summary progress")).to_have_attribute("value", str(rows))
    # The counts came from the batch's event stream, read with the key (not polled).
    assert f"{api_url}/v1/batches/{batch_id}/events" in requested
    items = page.locator("li.item")
    expect(items).to_have_count(min(rows, ITEMS_SHOWN))
    page.get_by_label("Search custom_id or prompt").fill(f"row-{rows - 1:03d}")
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("data-status", "succeeded")
    if kind == "text":
        expect(items.first.locator("pre.preview")).to_have_text(
            f"prompt number {rows - 1} of the campaign"
        )
    else:
        expect(items.first.locator("img")).to_be_visible()

    with page.expect_download() as download:
        page.get_by_role("link", name="Download ZIP").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    upload_to_zip_s = time.monotonic() - started
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
        manifest = archive.read("manifest.csv").decode()
    suffix = ".txt" if kind == "text" else ".png"
    assert len([name for name in names if name.endswith(suffix)]) == rows
    assert manifest.count("\nrow-") == 0 and manifest.count(",row-") == rows
    print(f"campaign {rows} x {model}: CSV chosen to ZIP saved in {upload_to_zip_s:.1f} s")

    page.get_by_label("Search custom_id or prompt").fill("")
    with page.expect_download() as download:
        page.get_by_role("link", name="Results CSV").click()
    results = tmp_path / download.value.suggested_filename
    download.value.save_as(results)
    lines = results.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("line,custom_id,job_id,status") and len(lines) == rows + 1
