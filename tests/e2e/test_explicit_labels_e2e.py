"""Visible labels as a team's option, through the real worker: once `aigc teams update
--explicit-labels` turns them on, the team's image has the corner mark, its text the
first line and its audio the chime before it; another team's same requests (same seeds)
come out unmarked."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from aigc.cli.main import app
from aigc.settings import get_settings
from tests.conftest import TeamKey
from tests.e2e.conftest import LiveStack
from tests.live import submit, wait_for_job
from workers.explicit_labels import CHIME_PAUSE_S, CHIME_TONE_S, TEXT_PREFIX

runner = CliRunner()
JOBS: dict[str, dict[str, Any]] = {
    "text": {"kind": "text", "prompt": "Marks", "params": {"max_new_tokens": 4, "seed": 3}},
    "image": {
        "kind": "image",
        "prompt": "a dot",
        "params": {"width": 64, "height": 64, "steps": 1, "seed": 3},
    },
    "audio": {"kind": "audio", "prompt": "hi", "params": {"seed": 3}},
}
CHIME_S = 2 * CHIME_TONE_S + CHIME_PAUSE_S


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch, live_env: dict[str, str]) -> Iterator[None]:
    """`aigc teams` on the stack's database."""
    monkeypatch.setenv("AIGC_DATABASE_URL", live_env["AIGC_DATABASE_URL"])
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def marked_team(operator: None, team: TeamKey) -> Iterator[TeamKey]:
    """The test team with visible labels on, off again afterwards (teams outlive tests)."""
    turned_on = runner.invoke(app, ["teams", "update", team.name, "--explicit-labels"])
    assert turned_on.exit_code == 0, turned_on.output
    try:
        yield team
    finally:
        turned_off = runner.invoke(app, ["teams", "update", team.name, "--no-explicit-labels"])
        assert turned_off.exit_code == 0, turned_off.output


def _outputs(client: httpx.Client) -> dict[str, tuple[dict[str, Any], bytes]]:
    """Each kind's artifact and its bytes."""
    jobs = {kind: submit(client, **body)["id"] for kind, body in JOBS.items()}
    outputs = {}
    for kind, job_id in jobs.items():
        job = wait_for_job(client, job_id)
        assert job["status"] == "succeeded", job["error"]
        [artifact] = job["artifacts"]
        outputs[kind] = (artifact, client.get(artifact["url"]).content)
    return outputs


def _wav_frames(data: bytes) -> int:
    with wave.open(io.BytesIO(data)) as audio:
        return audio.getnframes()


def test_a_team_with_the_option_gets_visible_labels_and_another_does_not(
    live: LiveStack, marked_team: TeamKey, other_team: TeamKey
) -> None:
    listed = runner.invoke(app, ["teams", "list"])
    rows = {line.split("│")[1].strip(): line for line in listed.stdout.splitlines() if "│" in line}
    assert "yes" in rows[marked_team.name] and "yes" not in rows[other_team.name]

    marked = _outputs(live.client)
    with httpx.Client(base_url=live.api_url, headers=other_team.headers, timeout=30) as other:
        plain = _outputs(other)

    assert marked["text"][1].decode().startswith(TEXT_PREFIX)
    assert not plain["text"][1].decode().startswith(TEXT_PREFIX)

    with (
        Image.open(io.BytesIO(marked["image"][1])) as a,
        Image.open(io.BytesIO(plain["image"][1])) as b,
    ):
        mine, theirs = a.convert("RGB"), b.convert("RGB")
    assert mine.getpixel((0, 0)) == theirs.getpixel((0, 0))  # same seed, same picture
    assert mine.getpixel((63, 63)) == (0, 0, 0) != theirs.getpixel((63, 63))  # the mark

    marked_audio, plain_audio = marked["audio"], plain["audio"]
    rate = marked_audio[0]["sample_rate"]
    added = _wav_frames(marked_audio[1]) - _wav_frames(plain_audio[1])
    assert added == round(CHIME_TONE_S * rate) * 2 + round(CHIME_PAUSE_S * rate)
    assert marked_audio[0]["duration_s"] == pytest.approx(
        plain_audio[0]["duration_s"] + CHIME_S, abs=0.002
    )
