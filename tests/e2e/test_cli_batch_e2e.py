"""`aigc batch` against the real API process, broker and worker process."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from aigc.cli.main import app
from aigc.settings import get_settings
from tests.conftest import TeamKey, count_jobs
from tests.e2e.conftest import LiveStack

runner = CliRunner()


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch, team: TeamKey) -> Iterator[None]:
    """The commands call as `team`, with its key in AIGC_API_KEY."""
    monkeypatch.setenv("AIGC_API_KEY", team.key)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _write_jsonl(path: Path, lines: Sequence[dict[str, Any] | str]) -> Path:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _echo(custom_id: str, prompt: str) -> dict[str, Any]:
    return {"custom_id": custom_id, "kind": "text", "model": "echo", "prompt": prompt}


def _batch(*args: str) -> Any:
    return runner.invoke(app, ["batch", *args])


def _count_batches(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM batches")).scalar_one())


def test_submit_wait_then_download_results(live: LiveStack, tmp_path: Path) -> None:
    jobs = [_echo(f"job-{n}", f"prompt number {n}") for n in range(4)]
    jobs.append(_echo("../../escape/me", "no way out"))
    source = _write_jsonl(tmp_path / "jobs.jsonl", jobs)

    submitted = _batch("submit", str(source), "--wait", "--api-url", live.api_url)
    assert submitted.exit_code == 0, submitted.output
    batch_id = submitted.stdout.strip()
    assert "5 succeeded" in submitted.stderr

    status = _batch("status", batch_id, "--api-url", live.api_url)
    assert status.exit_code == 0, status.output
    assert "completed" in status.stdout

    out = tmp_path / "out"
    downloaded = _batch("results", batch_id, "-o", str(out), "--api-url", live.api_url)
    assert downloaded.exit_code == 0, downloaded.output
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == [job["custom_id"] for job in jobs]
    assert {line["status"] for line in lines} == {"succeeded"}
    for n in range(4):
        assert (out / f"{n + 1}-job-{n}-0.txt").read_text() == f"prompt number {n}"
    # The custom_id that names parent directories stays a plain file name inside out/.
    assert (out / "5-escape_me-0.txt").read_text() == "no way out"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.jsonl", "out"]

    again = _batch("results", batch_id, "-o", str(out), "--api-url", live.api_url)
    assert again.exit_code == 0, again.output


def test_bad_lines_are_reported_by_number_and_nothing_is_submitted(
    live: LiveStack, db_engine: sa.Engine, tmp_path: Path
) -> None:
    source = _write_jsonl(
        tmp_path / "bad.jsonl",
        [
            _echo("a", "fine"),
            "{not json",
            {"kind": "text", "prompt": "no custom_id"},
            _echo("a", "duplicate"),
            {"custom_id": "b", "kind": "text", "prompt": "x", "params": {"temperature": 9}},
        ],
    )
    # Counted before and after, whichever tables clean_state empties.
    batches_before = _count_batches(db_engine)
    result = _batch("submit", str(source), "--wait", "--api-url", live.api_url)
    assert result.exit_code == 2, result.output
    for expected in ("line 2: line", "line 3: custom_id", "line 4: custom_id", "line 5: params"):
        assert expected in result.stderr
    assert "line 1:" not in result.stderr
    assert count_jobs(db_engine) == 0 and _count_batches(db_engine) == batches_before


def test_server_refusal_is_reported_by_line(
    live: LiveStack, db_engine: sa.Engine, tmp_path: Path
) -> None:
    # Which models exist is the server's to say: the file passes the local checks.
    source = _write_jsonl(
        tmp_path / "model.jsonl",
        [_echo("a", "fine"), {"custom_id": "b", "kind": "text", "model": "nope", "prompt": "x"}],
    )
    result = _batch("submit", str(source), "--api-url", live.api_url)
    assert result.exit_code == 2, result.output
    assert "line 2: model" in result.stderr
    assert count_jobs(db_engine) == 0


def test_wait_exits_1_when_a_job_fails(live: LiveStack, tmp_path: Path) -> None:
    # Nothing the voice model can pronounce: the model rejects it in the worker.
    source = _write_jsonl(
        tmp_path / "fails.jsonl",
        [_echo("ok", "fine"), {"custom_id": "mute", "kind": "audio", "prompt": "☃☃☃"}],
    )
    result = _batch("submit", str(source), "--wait", "--api-url", live.api_url)
    assert result.exit_code == 1, result.output
    assert "1 succeeded, 1 failed" in result.stderr

    out = tmp_path / "out"
    batch_id = result.stdout.strip()
    downloaded = _batch("results", batch_id, "-o", str(out), "--api-url", live.api_url)
    assert downloaded.exit_code == 0, downloaded.output
    failed = json.loads((out / "results.jsonl").read_text().splitlines()[1])
    assert failed["status"] == "failed" and failed["error"]["code"] == "invalid_input"
    # A text artifact comes with its label beside it, for `aigc verify`.
    assert sorted(p.name for p in out.iterdir()) == [
        "1-ok-0.txt",
        "1-ok-0.txt.label.json",
        "results.jsonl",
    ]


def test_cancel_and_unknown_batch(live: LiveStack, tmp_path: Path) -> None:
    slow = {"max_new_tokens": 400, "temperature": 0}
    source = _write_jsonl(
        tmp_path / "slow.jsonl",
        [{"custom_id": str(n), "kind": "text", "prompt": "x", "params": slow} for n in range(64)],
    )
    submitted = _batch("submit", str(source), "--priority", "low", "--api-url", live.api_url)
    assert submitted.exit_code == 0, submitted.output
    canceled = _batch("cancel", submitted.stdout.strip(), "--api-url", live.api_url)
    assert canceled.exit_code == 0, canceled.output
    assert "cancel" in canceled.stdout  # canceling or canceled, depending on the worker

    missing = _batch("status", "0190e0c8-0000-7000-8000-000000000000", "--api-url", live.api_url)
    assert missing.exit_code == 1
    assert "does not exist" in missing.stderr
    # One plain line: the API's method, path, status and message, no markup left in it.
    assert missing.stderr.startswith("GET /v1/batches/0190e0c8-")


def test_an_unknown_key_is_one_line_and_exit_1(
    live: LiveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGC_API_KEY", "aigc_00000000_" + "x" * 43)
    get_settings.cache_clear()
    result = _batch("status", "0190e0c8-0000-7000-8000-000000000000", "--api-url", live.api_url)
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "401" in line and "API key" in line


def test_submit_with_a_webhook(live: LiveStack, tmp_path: Path, db_engine: sa.Engine) -> None:
    source = _write_jsonl(tmp_path / "hooked.jsonl", [_echo("a", "hello")])
    # A plain-http webhook is refused (no operator setting allows it): nothing is submitted.
    before = _count_batches(db_engine)
    refused = _batch(
        "submit", str(source), "--webhook", "http://cms.example/hook", "--api-url", live.api_url
    )
    assert refused.exit_code == 1 and "webhook" in refused.stderr
    assert _count_batches(db_engine) == before
    # No deliverer runs in this stack: the webhook is recorded, nothing is sent anywhere.
    accepted = _batch(
        "submit",
        str(source),
        "--webhook",
        "https://cms.example/hook",
        "--webhook-event",
        "job_completed",
        "--webhook-event",
        "completed",
        "--api-url",
        live.api_url,
    )
    assert accepted.exit_code == 0, accepted.output
    batch = live.client.get(f"/v1/batches/{accepted.stdout.strip()}").json()
    assert batch["webhook"] == "https://cms.example/hook"
    assert batch["webhook_events_filter"] == ["job_completed", "completed"]
