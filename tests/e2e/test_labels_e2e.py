"""A text, an image and an audio job through the real worker: each downloaded artifact
carries a valid label naming its job, by `aigc verify` and by `POST /v1/verify`; another
team learns only that it is ours; an altered or stripped file is reported so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from aigc.cli.main import app
from aigc.labels import png
from aigc.settings import get_settings
from tests.conftest import TeamKey
from tests.e2e.conftest import LiveStack
from tests.live import submit, wait_for_job

runner = CliRunner()
EXTENSIONS = {"text": "txt", "image": "png", "audio": "wav"}
JOBS: list[dict[str, Any]] = [
    {"kind": "text", "prompt": "Labels", "params": {"max_new_tokens": 4}},
    {"kind": "image", "prompt": "a dot", "params": {"width": 64, "height": 64, "steps": 1}},
    {"kind": "audio", "prompt": "hi"},
]


@pytest.fixture(autouse=True)
def deployment_key(monkeypatch: pytest.MonkeyPatch, live_env: dict[str, str]) -> Iterator[None]:
    """`aigc verify` reads the label key where the stack's processes keep it."""
    monkeypatch.setenv("AIGC_VAR_DIR", live_env["AIGC_VAR_DIR"])
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _verify_cli(path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["verify", str(path), "--json", *args])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def _download(live: LiveStack, tmp_path: Path) -> list[tuple[dict[str, Any], Path]]:
    """Each job's artifact saved as a file (a text one with its label beside it)."""
    done = [wait_for_job(live.client, submit(live.client, **job)["id"]) for job in JOBS]
    files = []
    for job in done:
        assert job["status"] == "succeeded", job["error"]
        [artifact] = job["artifacts"]
        path = tmp_path / f"{job['kind']}.{EXTENSIONS[job['kind']]}"
        path.write_bytes(live.client.get(artifact["url"]).content)
        if job["kind"] == "text":
            Path(f"{path}.label.json").write_text(json.dumps(artifact["label"]))
        files.append((job, path))
    return files


def test_every_artifact_verifies_with_its_job(
    live: LiveStack, tmp_path: Path, other_team: TeamKey
) -> None:
    for job, path in _download(live, tmp_path):
        [artifact] = job["artifacts"]
        label = artifact["label"]
        assert (label["content_id"], label["job_id"]) == (artifact["id"], job["id"])

        code, report = _verify_cli(path)
        assert (code, report["status"]) == (0, "valid"), report
        assert report["layers"][0]["label"] == label  # the file's label is the response's

        data = path.read_bytes()
        params = {"label": json.dumps(label)} if job["kind"] == "text" else {}
        content_type = artifact["mime_type"]
        answer = live.client.post(
            "/v1/verify", content=data, params=params, headers={"content-type": content_type}
        ).json()
        assert (answer["status"], answer["origin"]) == ("valid", "your_team"), answer
        assert answer["job"]["job_id"] == job["id"]

        with httpx.Client(base_url=live.api_url, headers=other_team.headers) as other:
            theirs = other.post(
                "/v1/verify", content=data, params=params, headers={"content-type": content_type}
            ).json()
        assert (theirs["status"], theirs["origin"], theirs["job"]) == (
            "valid",
            "another_team",
            None,
        )


def test_altered_stripped_and_unknown_files(live: LiveStack, tmp_path: Path) -> None:
    image = tmp_path / "image.png"
    job = wait_for_job(live.client, submit(live.client, **JOBS[1])["id"])
    data = live.client.get(job["artifacts"][0]["url"]).content

    image.write_bytes(data.replace(job["id"].encode(), job["id"][::-1].encode()))
    assert _verify_cli(image)[0] == 2
    image.write_bytes(png.strip(data))
    code, report = _verify_cli(image)
    assert (code, report["status"]) == (1, "missing")

    response = live.client.post(
        "/v1/verify", content=b"GIF89a", headers={"content-type": "image/gif"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["errors"][0]["field"] == "file"
