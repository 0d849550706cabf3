"""`aigc batch` without a stack: the local checks and the errors that need no API."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aigc.cli.batch import safe_name, validate_jsonl
from aigc.cli.main import app

runner = CliRunner()


@pytest.fixture
def dead_url() -> str:
    """An address where nothing listens: any request to it fails to connect."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_local_checks_name_each_bad_line() -> None:
    good = {"custom_id": "a", "kind": "image", "prompt": "p", "params": {"steps": 2}}
    lines = [
        json.dumps(good),
        "",  # blank lines are skipped, as the server skips them
        "[1, 2]",
        json.dumps({"custom_id": "a", "kind": "text", "prompt": "again"}),
        json.dumps({"custom_id": "c", "kind": "video", "prompt": "p"}),
        json.dumps({"custom_id": "d", "kind": "image", "prompt": "p", "params": {"width": 65}}),
    ]
    errors = validate_jsonl("\n".join(lines).encode())
    assert [(e["line"], e["field"]) for e in errors] == [
        (3, "line"),
        (4, "custom_id"),
        (5, "kind"),
        (6, "params.width"),
    ]
    assert "line 1" in errors[1]["message"]


def test_local_checks_use_the_strict_decoder() -> None:
    lines = [
        '{"custom_id": "a", "kind": "text", "prompt": "p", "params": {"seed": NaN}}',
        '{"custom_id": "b", "kind": "text", "prompt": "p", "custom_id": "c"}',
        '{"custom_id": "d", "kind": "text", "prompt": "\\ud800"}',
    ]
    errors = validate_jsonl("\n".join(lines).encode())
    assert [(e["line"], e["field"]) for e in errors] == [
        (1, "params.seed"),
        (2, "custom_id"),
        (3, "prompt"),
    ]


def test_empty_file_is_refused() -> None:
    assert [e["field"] for e in validate_jsonl(b"\n\n")] == ["jobs"]


def test_bad_file_exits_2_before_any_request(tmp_path: Path, dead_url: str) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text('{"kind": "text", "prompt": "no id"}\n')
    # An unreachable API would exit 1: exit 2 shows nothing was attempted.
    result = runner.invoke(app, ["batch", "submit", str(source), "--api-url", dead_url])
    assert result.exit_code == 2
    assert "line 1: custom_id" in result.stderr


def test_unreachable_api_is_one_line_naming_the_url(tmp_path: Path, dead_url: str) -> None:
    source = tmp_path / "ok.jsonl"
    source.write_text('{"custom_id": "a", "kind": "text", "prompt": "hi"}\n')
    for args in (["submit", str(source)], ["status", "x"], ["results", "x", "-o", str(tmp_path)]):
        result = runner.invoke(app, ["batch", *args, "--api-url", dead_url])
        assert result.exit_code == 1, args
        assert result.stderr.startswith(f"cannot reach the API at {dead_url}")
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("custom_id", "name"),
    [("img-1.v2", "img-1.v2"), ("../../etc/passwd", "etc_passwd"), ("..", "job"), (None, "job")],
)
def test_custom_ids_become_plain_file_names(custom_id: str | None, name: str) -> None:
    assert safe_name(custom_id) == name
